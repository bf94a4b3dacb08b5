"""Writing recordings: the writer and the crash-safe commit of its parts."""
