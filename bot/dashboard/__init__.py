"""The web dashboard for managers, served by `leadrouter serve` at `/dashboard` (`routes`)."""
