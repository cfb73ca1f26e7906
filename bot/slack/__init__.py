"""The Slack surface: Block Kit rendering, listeners and wiring."""
