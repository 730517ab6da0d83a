"""The command lines, one module per command: `python -m csa_lib.cli.<name>`, installed as `csa-<name>`.

`train` (one flag per Config field), `evaluate`, `inpaint` (one photo, one mask) and `demo` (the sample
photos with the shipped weights). `conventions` is what they share: `--help` with every default,
`--debug`, and a user error or a warning as one line (`<prog>: error: ...`, exit status 2).
Nothing is imported here.
"""
