"""Persistence: the only package that speaks SQL (tables, migrations, queries). Imports
nothing of scopegate's outside store/.
"""
