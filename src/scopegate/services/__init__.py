"""The use cases that change state (sign-up, keys, apps, organizations, models, login): the
only writers above store/; each change audits itself. Imports auth/, contract/ and
store/.
"""
