"""The `scopegate` command line: one module per command group (`app` joins them) over
services/, with one way to open the database and answer (`common`, `output`). The top
layer: may import every other package (server/ for settings and composition, services/,
store/ for reads).
"""
