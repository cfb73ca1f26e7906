"""dumptask-bot: start and pause DIS dump tasks from Slack, behind an approval gate."""

__version__ = "0.1.0"
