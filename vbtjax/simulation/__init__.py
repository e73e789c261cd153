"""The simulation layer: advancing a :class:`~vbtjax.Network` in time, one run or a batch.

- :mod:`~vbtjax.simulation.delays`: conduction delays in steps and the delay history's layout;
- :mod:`~vbtjax.simulation.solvers`: TVB's Euler, Heun and RK4 as Diffrax solvers;
- :mod:`~vbtjax.simulation.simulate`: :func:`~vbtjax.simulate` and its :class:`~vbtjax.Solution`;
- :mod:`~vbtjax.simulation.distributed`: placing a batch on devices and processes;
- :mod:`~vbtjax.simulation.sweep`: batched runs over parameter values (:func:`~vbtjax.sweep`).
"""
