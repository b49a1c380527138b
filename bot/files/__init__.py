"""Reading the files people bring: leads (CSV, JSON Lines or a JSON array) and accounts (CSV), row
by row with line numbers, each file checked whole before its first row is read (`text`: its
encoding; `tables`: a CSV's delimiter and columns). A bad row never stops a run: it comes back as
a `BadRow` naming its line, and the caller reports it and goes on. The same readers serve
`simulate`, `demo` and `import`.
"""
