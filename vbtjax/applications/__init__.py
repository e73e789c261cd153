"""The applications layer: clinical and scientific workflows built on twins.

- :mod:`~vbtjax.applications.vep`: the Virtual Epileptic Patient (epileptogenic-zone inference from SEEG and
  virtual resection); also importable as ``vbtjax.vep``.
"""
