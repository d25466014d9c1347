"""The `scopegate` command line: one Typer app over services/. The top layer: may import
every other package (server/ for settings and composition, services/, store/ for reads).
"""
