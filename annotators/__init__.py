"""Everything that looks at pixels or writes language: detectors, trackers, captioners,
importers of existing annotations, review adapters. Annotators use ``engine.stage`` and
``engine.video`` but never the runners."""
