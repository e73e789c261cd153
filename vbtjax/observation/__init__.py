"""The observation layer: from simulated states to what is measured and compared.

- :mod:`~vbtjax.observation.monitors`: streaming monitors (Raw, TemporalAverage, BOLD, EEG/MEG/SEEG projections);
- :mod:`~vbtjax.observation.features`: FC, FCD, spectra and envelopes of time series.
"""
