"""The WebOS Oracle pages: collaborative canvas pages in the browser (`routes`)."""
