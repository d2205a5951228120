"""The `switchyard` command: the top of the project, above the supervisor, the control plane and the ext_proc.

`main` parses the command line and hands each subcommand to the layer that does the work; the modules here only
present (status and usage views, the demo banner, the route summary) or make files (`switchyard certs`).
"""
