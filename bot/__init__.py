"""The sif-bot core: commands, rules and services, independent of chat platforms and SQL."""
