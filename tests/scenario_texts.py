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

DUMP_HELD_OTHER = """\
name: dump_held_other
description: The dump must hold ring_a and not secret; ring_a was never stored, secret was.
tags: [store, create]
steps:
  - alloc: {name: ring_a, size: 64}
  - alloc: {name: table, size: 256}
  - alloc: {name: secret, size: 32}
  - store: table
  - store: secret
  - create: {bugcheck_code: 0x1A2, parameter: 0x1234, secondary_data: table}
    expect:
      dump:
        contains: [ring_a, table]
        excludes: [secret]
        secondary_data: [{buffer: table}]
"""
