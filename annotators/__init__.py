"""Everything that looks at pixels or writes language: detectors, trackers, captioners,
importers of existing annotations, review adapters. Annotators use ``tubelet.engine.stage`` and
``tubelet.engine.video`` but never the runners."""
