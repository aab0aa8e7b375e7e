"""From raw footage to a training dataset: ``python -m trainers.prepare RAW_DIR --out DATASET_DIR``.

    python -m trainers.prepare RAW_DIR --out DATASET_DIR [--min-seconds 5 --max-seconds 20 --fps 8
        --long-side 512 --identities FILE.csv --workers N --caption-model DIR_OR_REPO --push-to-hub REPO]

Every video under ``RAW_DIR`` (``RAW_DIR/<identity>/*.mp4``, or any layout with ``--identities``) is decoded
streamed with PyAV, split at its shot boundaries (``directanimator.shots.detect_shots``), and each shot is kept
as one clip when it passes the filters, in this order: too short, too dark, too blurry, static (picture
statistics of every frame), no person, several people (the offline segmenter on a few frames of the clip). A shot
longer than ``--max-seconds`` gives as many consecutive clips of ``--max-seconds`` as fit, each filtered on its own.
A kept clip is resampled to ``--fps`` and given a reference frame: the sharpest frame with the person's face, from
another moment of the same shot when it has one. The output is a dataset in the
trainers' format (``trainers/dataset.py``) with a card counting everything kept and dropped and why.

Resumable and split across processes (``--workers``, ``accelerate launch``): a source with its report is not
done again; the folder carries a ``PREPARING`` marker, which the trainers refuse, until every source is done.

Modules: ``sources`` (the raw folder and identities), ``decode`` (streamed decoding), ``quality`` (frame
statistics, shot filters), ``main_person`` (person check, reference frame), ``clips`` (one source to clips and
its report), ``folder`` (the dataset folder, the merge), ``run`` (shares across processes), ``captions``
(``--caption-model``), ``identities`` (``--identity-from cluster``), ``hub`` (``--push-to-hub``).
"""
