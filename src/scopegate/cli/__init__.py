"""The `scopegate` command line: one Typer app over services/. Imports services/, server/
(settings and composition) and store/.
"""
