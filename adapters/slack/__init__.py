"""Slack adapter (slack-bolt); built in the Slack adapter issue."""
