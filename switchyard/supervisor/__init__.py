"""The process supervisor behind `switchyard up` and `switchyard node`: it writes Envoy's bootstrap, starts Envoy,
the control plane and the ext_procs as child processes, restarts what dies, and drains before a planned stop.

It sits on top of the control plane and the ext_proc (it starts them as processes, never imports their internals).
"""
