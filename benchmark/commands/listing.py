"""``drkd-bench list``: methods with their hyperparameters, architectures, datasets and
shipped configs."""
from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("list", help="methods with their hyperparameters, architectures, datasets, "
                                    "shipped configs")
    return p


def run(args) -> int:
    import methods
    from benchmark import config, data, models
    from benchmark.config.plugins import BUILT_IN, origin

    def came(kind: str, name: str) -> str:
        o = origin(kind, name)
        return "" if o is BUILT_IN else f"  (from {o})"

    print("methods:")
    for name in methods.names():
        m = methods.get(name)
        teacher = m.teacher if m.teacher != "param" else "|".join(m.params["teacher"].choices)
        print(f"  {name:<10} teacher={teacher}  batches={m.batch_plan}  {m.summary}  [{m.paper}]"
              + came("method", name))
        if m.source:
            print(f"      follows {m.source}")
        for key, p in m.params.items():
            extra = f" choices {'/'.join(map(str, p.choices))}" if p.choices else ""
            extra += f" valid {p.valid}" if p.valid else ""
            extra += (f" search [{p.low:g}, {p.high:g}]{' log' if p.log else ''}"
                      if p.tunable else "")
            default = "preset" if p.default is None else p.default
            print(f"      {key:<14} default {default}{extra}  {p.help}")
        for fidelity, values in m.presets.items():
            print(f"      fidelity={fidelity}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        if m.control:
            print("      control (control: true): " + ", ".join(
                f"{k}={v}" for k, v in m.control.items()) + f" - {m.control_summary}")
    print("architectures:")
    for name in models.names():
        print(f"  {name:<13} {models.describe(name)}" + came("architecture", name))
    print("  timm:<name>   any timm model, built with pretrained=False")
    print("datasets:")
    for name in data.names():
        s = data.get_spec(name)
        print(f"  {name:<14} {s.num_classes} classes, default arch {s.default_arch}; {s.source}"
              + came("dataset", name))
    from benchmark.data import plans
    from benchmark.models import teachers

    extra = [(k, n) for k, names in (("teacher source", teachers.SOURCES),
                                     ("batch plan", plans.PLANS)) for n in names
             if origin(k, n) is not BUILT_IN]
    if extra:
        print("from plugins:")
        for kind, name in extra:
            print(f"  {kind} {name}{came(kind, name)}")
    print("every entry without '(from ...)' is built in")
    print("configs:", ", ".join(sorted(config.shipped_configs())))
    return 0
