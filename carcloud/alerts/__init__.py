"""Alert rules declared as data, the alerts they raise, and their lifecycle."""
