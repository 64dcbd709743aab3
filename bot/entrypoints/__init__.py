"""The ways sif-bot is started: the command line, its HTTP endpoints, the scheduler, the
demo, the operator commands and the simulator. They build everything through
`bot.bootstrap`."""
