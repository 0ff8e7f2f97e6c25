"""The SQL database: engine and sessions (`engine`), tables (`tables`), migrations (`migrate`)."""
