"""How results show themselves, as data: :mod:`~rnngrad.show.display` (repr, HTML,
tables, ``.plot()``), :mod:`~rnngrad.show.figure` (figures as plain data and their
Plotly specs), :mod:`~rnngrad.show.draw` (the same figures drawn with Matplotlib, and
the monitor's heat map), :mod:`~rnngrad.show.i18n` (the messages in every language).

The numerical core imports these; they import no result module, so every arrow
points down into them.
"""
