"""The `xgenerator` command: server commands, client commands, rendering, demo."""
