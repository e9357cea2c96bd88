"""Where the stages of a run execute: one module per executor, behind ``base.Executor``."""
