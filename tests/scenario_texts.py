"""Small scenario documents shared by the plugin and report tests."""

PASSING = """\
name: passes
tags: [smoke]
steps:
  - alloc: {name: a, size: 16}
  - store: a
  - create: {bugcheck_code: 0x1A2}
    expect: {dump: {contains: [a]}}
"""

FAILING = """\
name: fails
steps:
  - alloc: {name: a, size: 16}
  - create: {bugcheck_code: 0x1A2}
    expect:
      dump:
        contains: [a]
"""

DEFECT = """\
name: defect
known_defect: {id: remove-null-context, reason: F13}
steps:
  - alloc: {name: a, size: 16}
  - store: a
  - remove: a
  - create: {bugcheck_code: 1}
    expect: {dump: {excludes: [a]}}
"""
