"""Negative samplers that live in a module of their own (one file each).

Every module of this package is imported when :mod:`repro.samplers` is, and registers its
sampler there with :func:`repro.samplers.register_sampler`. Adding a method is its file here,
its test and a config entry: the config schema takes its name and options from the registry
(:func:`repro.config.load_schema`), and the tables and figures describe it through
``describe``.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
