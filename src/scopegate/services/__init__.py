"""The use cases that change state, one module per concept (users, keys, apps,
collaborators, organizations, models, login) over `audit` and `change_log`: the only
writers above store/; each change audits itself and logs what it evicts, one way.
Imports access/ (the login throttles), auth/, contract/, store/ (and runners/ for
models), never an adapter.
"""
