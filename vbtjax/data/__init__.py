"""The data layer: what a twin is built from, read and checked.

- :mod:`~vbtjax.data.connectome`: :class:`~vbtjax.Connectome` (weights, tract lengths in mm, centres, labels), its
  loaders and transforms;
- :mod:`~vbtjax.data.parcellation`, :mod:`~vbtjax.data.tractogram` and :mod:`~vbtjax.data.structural`: label
  images, tractograms, and connectomes built from them;
- :mod:`~vbtjax.data.sensors`: EEG/MEG/SEEG sensors and gain matrices; :mod:`~vbtjax.data.recordings`: SEEG
  recordings (EDF, BrainVision, FIF, BIDS-iEEG);
- :mod:`~vbtjax.data.empirical`: resting-state BOLD and FC of a subject; :mod:`~vbtjax.data.datasets`: named data
  (tvb-data's connectomes, the embedded HCP subject).

The embedded data files live beside these modules (``hcp_*.npz``).
"""
