"""The ``drkd-bench`` commands, one module each: ``add(sub)`` declares its flags and ``run(args)``
handles them. The order here is the order of ``drkd-bench --help``."""

#: command name -> module of this package
COMMANDS = {"list": "listing", "train": "train", "grid": "grid", "tune": "tune", "speed": "speed",
            "report": "report", "plan": "plan", "reproduce": "reproduce", "export": "export",
            "ui": "ui", "download": "download", "schema": "schema"}
