"""ROOT in and out: find and open files, read branches, write trees atomically, inspect."""
