"""The imperative shell of the controller: everything one cycle reads and writes.

`cycle.Controller.run_once` is the sequence (drawn in `cycle`'s docstring): the leader
lease (`lease`), key epochs (`key_epochs`), the reports (`intake`, with its bookkeeping in
`intake_state`), planner memory and spec (`control_objects`), the pure planner, signed
conditional writes (`publish`) and what operators read (`records`). `daemon` runs cycles on
a schedule; `local_dir` is the controller's small local state directory. The planner and
the spec stay pure; all I/O of a cycle is here.
"""
