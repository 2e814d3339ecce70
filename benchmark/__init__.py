"""drkd-bench: a reproducibility benchmark harness for teacher-free knowledge distillation."""
__version__ = "0.1.0"
