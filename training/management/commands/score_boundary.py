from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.directions import DECOMPOSITION, DIRECTIONS
from boundary.triples import Triple, TripleValidationError, parse_triples
from training.novelty import GROUPS, known_entities, novelty
from training.official_scoring import SCORER as OFFICIAL_SCORER
from training.official_scoring import SCORING_LIMITS, read_webnlg_xml, score_decomposition_official
from training.scoring import score_decomposition, score_recomposition

# Every report names the scorer that produced it, so figures are never compared across scorers.
CORRECTED_SCORER = "valence-corrected"
RECOMPOSITION_SCORER = "sacrebleu"


class Command(BaseCommand):
    help = (
        "Score predictions against WebNLG-style JSONL references and print a JSON report. "
        "decomposition: prediction lines {id, triples}, joined to references by id. "
        "recomposition: prediction lines {entry_id, text}; every text of an entry is a reference. "
        "Decomposition files may also be WebNLG benchmark XML (*.xml: Refs.xml, candidates)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--direction", choices=DIRECTIONS, required=True)
        parser.add_argument("--predictions", type=Path, required=True, metavar="FILE")
        parser.add_argument("--references", type=Path, required=True, metavar="FILE")
        parser.add_argument("--output", type=Path, metavar="FILE", help="Also write it here.")
        parser.add_argument(
            "--official",
            action="store_true",
            help=(
                "Decomposition only: score as the WebNLG 2020 text-to-RDF script did, quirks "
                "included, to compare with published figures (default: the corrected scorer)."
            ),
        )
        parser.add_argument(
            "--by-entity-novelty",
            type=Path,
            metavar="TRAIN_FILE",
            help=(
                "Decomposition only: also score apart the entries whose entities all occur in "
                "this training JSONL (seen), none do (unseen), or some do (mixed)."
            ),
        )

    def handle(
        self,
        *args: object,
        direction: str,
        predictions: Path,
        references: Path,
        output: Path | None,
        official: bool = False,
        by_entity_novelty: Path | None = None,
        **options: object,
    ) -> None:
        if by_entity_novelty is not None and direction != DECOMPOSITION:
            raise CommandError("--by-entity-novelty applies to decomposition only.")
        if direction == DECOMPOSITION:
            report = _score_decomposition(
                predictions, references, official=official, train=by_entity_novelty
            )
        elif official:
            raise CommandError(
                "--official applies to decomposition only: for recomposition, sacreBLEU's BLEU "
                "and chrF++ already reproduce the official 2020 scores."
            )
        else:
            report = _score_recomposition(predictions, references)
        text = json.dumps(report, indent=2)
        if output is not None:
            try:
                output.write_text(text + "\n", encoding="utf-8")
            except OSError as error:
                raise CommandError(f"{output}: cannot write it ({error.strerror}).") from error
        self.stdout.write(text)


def _score_decomposition(
    predictions: Path, references: Path, *, official: bool, train: Path | None = None
) -> dict[str, Any]:
    expected: dict[str, list[Triple]] = {}
    for where, record_id, triples in _triple_records(references, allow_empty=False):
        if record_id in expected:
            raise CommandError(f"{where}: duplicate id {record_id!r}.")
        expected[record_id] = triples

    predicted: dict[str, list[Triple]] = {}
    for where, record_id, triples in _triple_records(predictions, allow_empty=True):
        if record_id not in expected:
            raise CommandError(f"{where}: id {record_id!r} is not in {references}.")
        if record_id in predicted:
            raise CommandError(f"{where}: duplicate id {record_id!r}.")
        predicted[record_id] = triples

    # A reference without a prediction scores as an empty prediction: it costs recall.
    report: dict[str, Any] = {
        "direction": "decomposition",
        "scorer": OFFICIAL_SCORER if official else CORRECTED_SCORER,
        "missing_predictions": len(expected) - len(predicted),
        **_scores(list(expected), predicted, expected, official=official),
    }
    if train is not None:
        known = known_entities(
            triples for _, _, triples in _triple_records(train, allow_empty=False)
        )
        groups: dict[str, list[str]] = {group: [] for group in GROUPS}
        for record_id, triples in expected.items():
            groups[novelty(triples, known)].append(record_id)
        report["by_entity_novelty"] = {
            "train": str(train),
            **{
                group: {"entries": len(ids), **_scores(ids, predicted, expected, official=official)}
                for group, ids in groups.items()
                if ids
            },
        }
    return report


def _scores(
    ids: list[str],
    predicted: dict[str, list[Triple]],
    expected: dict[str, list[Triple]],
    *,
    official: bool,
) -> dict[str, Any]:
    paired = [predicted.get(i, []) for i in ids], [expected[i] for i in ids]
    if not official:
        return score_decomposition(*paired)
    try:
        return score_decomposition_official(*paired)
    except ValueError as error:
        raise CommandError(f"The 2020 scorer cannot score these predictions: {error}") from error


def _triple_records(path: Path, *, allow_empty: bool) -> Iterator[tuple[str, str, list[Triple]]]:
    """(where, id, triples) per record of a JSONL file or a WebNLG benchmark XML file."""
    if path.suffix.lower() == ".xml":
        yield from _xml_records(path, allow_empty=allow_empty)
        return
    for where, record in _records(path):
        record_id = _string(record, "id", where)
        yield where, record_id, _triples(record, where, allow_empty=allow_empty)


def _xml_records(path: Path, *, allow_empty: bool) -> Iterator[tuple[str, str, list[Triple]]]:
    """Entries of a Refs.xml-style or candidates file, as the 2020 script reads them."""
    try:
        entries = read_webnlg_xml(path)
    except FileNotFoundError as error:
        raise CommandError(f"{path}: no such file.") from error
    except OSError as error:
        raise CommandError(f"{path}: cannot read it ({error.strerror}).") from error
    except ValueError as error:
        raise CommandError(str(error)) from error
    for entry_id, triples in entries:
        where = f"{path}, entry {entry_id}"
        if not (triples or allow_empty):
            raise CommandError(f"{where}: no triples.")
        yield where, entry_id, triples


def _score_recomposition(predictions: Path, references: Path) -> dict[str, Any]:
    texts: dict[str, list[str]] = {}
    for where, record in _records(references):
        entry_id = _string(record, "entry_id", where)
        texts.setdefault(entry_id, []).append(_string(record, "text", where))

    hypotheses: dict[str, str] = {}
    for where, record in _records(predictions):
        entry_id = _string(record, "entry_id", where)
        if entry_id not in texts:
            raise CommandError(f"{where}: entry_id {entry_id!r} is not in {references}.")
        if entry_id in hypotheses:
            raise CommandError(f"{where}: duplicate entry_id {entry_id!r}.")
        hypotheses[entry_id] = _string(record, "text", where, allow_empty=True)

    # An entry without a prediction scores as an empty text.
    scores = score_recomposition([hypotheses.get(e, "") for e in texts], list(texts.values()))
    return {
        "direction": "recomposition",
        "scorer": RECOMPOSITION_SCORER,
        "missing_predictions": len(texts) - len(hypotheses),
        **scores,
    }


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each object of a JSONL file, with "<path>, line <n>" for messages; blank lines skipped."""
    try:
        # Not splitlines(): JSON strings may hold U+2028 and friends unescaped.
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError as error:
        raise CommandError(f"{path}: no such file.") from error
    except UnicodeDecodeError as error:
        raise CommandError(f"{path}: not UTF-8 text ({error.reason}).") from error
    except OSError as error:
        raise CommandError(f"{path}: cannot read it ({error.strerror}).") from error
    found = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CommandError(f"{where}: invalid JSON ({error.msg}).") from error
        if not isinstance(record, dict):
            raise CommandError(f"{where}: expected a JSON object.")
        found = True
        yield where, record
    if not found:
        raise CommandError(f"{path}: no records.")


def _string(record: dict[str, Any], key: str, where: str, *, allow_empty: bool = False) -> str:
    if key not in record:
        raise CommandError(f"{where}: missing key {key!r}.")
    value = record[key]
    if not isinstance(value, str):
        raise CommandError(f"{where}: {key!r} must be a string.")
    if not (allow_empty or value.strip()):
        raise CommandError(f"{where}: {key!r} must not be empty.")
    return value


def _triples(record: dict[str, Any], where: str, *, allow_empty: bool) -> list[Triple]:
    if "triples" not in record:
        raise CommandError(f"{where}: missing key 'triples'.")
    data = record["triples"]
    if allow_empty and data == []:
        return []  # a model may find no facts at all
    try:
        return parse_triples(data, SCORING_LIMITS)
    except TripleValidationError as error:
        raise CommandError(f"{where}: {error}") from error
