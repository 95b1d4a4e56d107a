"""Output for people: progress display, result tables, (later) plots and HTML reports."""
