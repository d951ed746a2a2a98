"""Every issue code the gate can emit, with its severity and what to do about it.

One table, so a reader of a report (or ``tdm validate``) always gets a suggestion, and
so a new check cannot ship a code nobody explained: ``tests/unit/gate/test_issue_codes.py``
scans the code base for emitted codes and fails on one missing here. An emitter may pass
a more specific suggestion (the readers name the exact byte or column); an issue built
without one gets this table's (see :class:`tdm_dagster.records.issues.RecordIssue`).

Codes ending in ``_`` are families: ``content.gopher_top_`` covers
``content.gopher_top_2gram``, ``content.gopher_top_3gram``, ...
"""

from __future__ import annotations

from typing import NamedTuple


class IssueCode(NamedTuple):
    severity: str
    suggestion: str


def _e(suggestion: str) -> IssueCode:
    return IssueCode("ERROR", suggestion)


_REEXPORT = "re-export the file from its source, or fix the record named in the message"

ISSUE_CODES: dict[str, IssueCode] = {
    # reading a file (tdm_dagster.ingest, tdm_dagster.records.strict_json)
    "read.bad_csv": _e("quote fields that contain commas, quotes or newlines, and re-export the CSV"),
    "read.bad_header": _e("give every column its own name"),
    "read.corrupt_file": _e("the file is damaged: re-export or re-download it"),
    "read.duplicate_key": _e("keep one value per key in each object"),
    "read.empty_file": _e("the file holds no records: check the export wrote any"),
    "read.integer_too_long": _e("store the number as a string"),
    "read.invalid_json": _e("fix the JSON at the position named (a missing comma, quote or bracket)"),
    "read.invalid_json_column": _e("store valid JSON text in that column, or a plain string"),
    "read.invalid_utf8": _e("re-encode the file as UTF-8"),
    "read.io_error": _e("check the file is readable and the disk is healthy, then retry"),
    "read.lone_surrogate": _e("re-export the text as valid Unicode"),
    "read.non_finite_number": _e("write the value as null, or as a string if it matters"),
    "read.not_an_array": _e("wrap the records in one top-level JSON array, or write JSON Lines"),
    "read.not_an_object": _e("make each record a JSON object"),
    "read.not_json_type": _e("convert the value to a JSON type (strings for timestamps, decimals and bytes)"),
    "read.not_parquet": _e("check the file is complete Parquet"),
    "read.nul_byte": _e("remove the NUL bytes; the file may be binary or truncated"),
    "read.ragged_row": _e("give every row as many columns as the header"),
    "read.too_deep": _e("flatten the record, or store the deep part as a string"),
    "read.too_large": _e("split the record, or raise gate.max_record_bytes"),
    "read.trailing_content": _e("remove what follows the JSON document, or write JSON Lines"),
    "read.truncated": _e("the file ends inside a record: re-export it completely"),
    "read.truncated_file": _e("the file ends early: re-export it completely"),
    "read.unconvertible_value": _e("store the column as plain strings or numbers"),
    "read.unexpected_schema": _e("rename the columns to one of the accepted shapes"),
    "read.unknown_format": _e("give the file a known extension (.jsonl, .json, .csv, .parquet, ...)"),
    "read.unsupported_encoding": _e("re-encode the file as UTF-8"),
    # recognising a record's shape (tdm_dagster.ingest.shapes)
    "shape.ambiguous_shape": _e("split the record, or move the other keys under metadata"),
    "shape.bad_instance": _e("keep only input and output in each instance"),
    "shape.bad_instances": _e("give the task at least one {input, output} instance, or drop it"),
    "shape.bad_turn": _e("keep only from and value in each turn"),
    "shape.metadata_conflict": _e("keep one of the two values"),
    "shape.not_an_object": _e("each record must be a JSON object"),
    "shape.unexpected_key": _e("drop the key, or move it under metadata"),
    "shape.unknown_role": _e("map the speaker to user, assistant or system, or drop the turn"),
    "shape.unknown_shape": _e("convert the record to one of the accepted shapes"),
    "shape.wrong_type": _e("give the field the type the shape expects"),
    # the schema gate (tdm_dagster.gate.schemas)
    "schema.bad_message": _e("give each message exactly role and content"),
    "schema.bad_span": _e("give each entity as [text, label, start, end] with start/end the offsets of text, on word boundaries, not overlapping"),
    "schema.bad_value": _e("regenerate the record, or correct the metadata value named"),
    "schema.missing_field": _e("add the field, or validate against the spec the record was written for"),
    "schema.not_an_object": _e("make the record a JSON object"),
    "schema.spec_mismatch": _e("check the file's format, or validate with the --spec its records have"),
    "schema.unknown_label": _e("use a label the config's labels section declares, or declare this one"),
    "schema.unknown_field": _e("drop the field, or move it under metadata"),
    "schema.unknown_spec": _e("use one of the known specs (tdm validate --help lists them)"),
    "schema.wrong_type": _e("give the field the type the message names"),
    # the format suite
    "format.bad_content": _e("make each message's content a string"),
    "format.bad_message": _e("make each message an object with role and content"),
    "format.bad_role": _e("use the roles system, user and assistant"),
    "format.empty_content": _e("fill the empty turn, or drop the record"),
    "format.missing_field": _e("give each message both role and content"),
    "format.no_final_assistant": _e("end the conversation with the assistant's reply"),
    "format.no_messages": _e("give the record at least a user and an assistant turn"),
    "format.not_a_list": _e("make messages a list of {role, content} objects"),
    "format.not_alternating": _e("alternate user and assistant turns (after an optional system turn)"),
    # the length, diversity and balance suites
    "length.too_long": _e("shorten or split the conversation, or raise quality.max_tokens"),
    "length.too_short": _e("give a complete reply, or lower quality.min_tokens if short replies are right here"),
    "diversity.duplicate_example": _e("drop the copy"),
    "balance.turn_ratio": _e("give every user turn one assistant reply"),
    # the content suite (tdm_dagster.gate.quality.heuristics)
    "content.blank_turn": _e("fill the blank turn, or drop the record"),
    "content.control_char": _e("strip control characters (keep tab and newline)"),
    "content.gopher_dup_lines": _e("remove the repeated lines; the generator is looping"),
    "content.gopher_top_": _e("remove the repeated phrase; the generator is looping"),
    "content.lorem_ipsum": _e("replace the filler with real text, or drop the record"),
    "content.refusal_boilerplate": _e("drop the refusal, or regenerate the reply"),
    "content.replacement_char": _e("re-export the text with the right encoding"),
    "content.template_placeholder": _e("fill the template placeholder, or drop the record"),
    "content.no_stop_words": _e("regenerate the reply: it reads as word salad, not English"),
    "content.mixed_alnum_words": _e("regenerate the reply: words like 'sail2' are a broken generation"),
    "content.unexpected_language": _e("translate or drop the record, or add its language to quality.languages"),
    # broken replies (tdm_dagster.gate.broken_replies)
    "content.long_token": _e("regenerate the reply: a dump or glued junk, not text (or raise quality.max_token_chars)"),
    "content.mean_word_length": _e("regenerate the reply: its words are not words (encoded data, or one letter over and over)"),
    "content.symbol_ratio": _e("regenerate the reply, or cut its tail: mostly symbols (markdown rubble, emoji)"),
    "content.unpronounceable_words": _e("regenerate the reply, or cut its tail: words without vowels are junk"),
    "content.word_salad": _e("regenerate the reply, or cut its tail: 'the of', 'your and' are word salad"),
    "content.short_loop": _e("regenerate the reply: the generator looped"),
    "content.prompt_echo": _e("regenerate the reply: it gives the prompt back instead of answering"),
    "content.foreign_script": _e("regenerate the reply, or name the language in the prompt if that script is wanted"),
    "content.few_stop_words": _e("regenerate the reply, or cut its tail: a long run of words with hardly a stop word is not English prose"),
    "content.chat_template_token": _e("strip the template tokens, or fix the generator's chat template / stop tokens"),
    # the reply model (tdm_dagster.gate.text_model) and the generation's own word
    "content.model_fluency": _e("regenerate the reply: its words do not follow each other as English does (word salad, shuffled words)"),
    "content.cut_off": _e("regenerate with a larger max_tokens: the generator stopped at its token limit (finish_reason: length)"),
    "content.unfinished_ending": IssueCode("WARNING", "check the reply's end: it stops on a word replies do not end on, as a reply cut off by max_tokens does"),
    # rule margins (tdm_dagster.gate.margins): kept, scored lower
    "content.near_repetition": IssueCode("WARNING", "cut the repeated lines or phrase: the reply is close to being rejected as a loop"),
    "content.near_mixed_alnum": IssueCode("WARNING", "check the reply reads as language: it is close to being rejected for words like 'sail2'"),
    "content.near_broken": IssueCode("WARNING", "check the reply: it is close to being rejected as a broken generation (the message names the rule)"),
    # hidden characters (tdm_dagster.gate.reading_view)
    "text.bidi_control": _e("remove the bidi embedding/override/isolate characters: they make the text display other than it reads"),
    "text.invisible_characters": IssueCode("WARNING", "remove the zero-width or soft-hyphen characters inside words"),
    # record checks (tdm_dagster.gate.record_checks)
    "structure.unclosed_code_block": _e("close the code block, or regenerate the reply: it was cut off"),
    "structure.unbalanced_brackets": IssueCode("WARNING", "close or remove the bracket named in the message"),
    "structure.unclosed_emphasis": IssueCode("WARNING", "close the ** emphasis, or remove it"),
    "structure.broken_table": IssueCode("WARNING", "give every table row as many cells as its header"),
    "check.failed": _e("fix the quality check named in the message: it failed on this record, which it was asked to judge"),
    # the deep level (tdm_dagster.gate.deep)
    "dedup.exact_duplicate": _e("drop the copy"),
    "dedup.exact_duplicate_of_queued": _e("drop the record: the same example is already queued"),
    "dedup.near_duplicate": IssueCode("WARNING", "vary the example, or drop it if it adds nothing"),
    "dedup.near_duplicate_of_queued": IssueCode("WARNING", "vary the example, or drop it: a near copy is already queued"),
    "dedup.semantic_duplicate": IssueCode("WARNING", "vary the example, or drop it: it says what an earlier record says, in other words"),
    "dedup.semantic_duplicate_of_queued": IssueCode("WARNING", "vary the example, or drop it: a reworded copy is already queued"),
    "leakage.semantic_eval_item": _e("remove the record: it is an evaluation item in other words, and evaluation items must never be trained on"),
    "relevance.semantic_off_topic": IssueCode("WARNING", "check that the reply answers this prompt; regenerate it if it answers something else"),
    "relevance.semantic_restates_prompt": IssueCode("WARNING", "regenerate the reply: it restates the prompt instead of answering it"),
    "leakage.ngram": _e("remove the record, or the item from the evaluation set"),
    "leakage.answer_in_prompt": _e("remove the record, or the item from the evaluation set"),
    "leakage.own_answer_in_prompt": _e("remove the answer from the prompt, or drop the record"),
    "leakage.eval_prompt": _e("remove the record: evaluation items must never be trained on"),
    "leakage.eval_problem": _e("remove the record: it is an evaluation problem in other words, and evaluation items must never be trained on"),
    # answer verification (tdm_dagster.gate.verify)
    "answer.wrong": _e("fix or regenerate the reply, or correct the reference answer if it is the one that is wrong"),
    "answer.unverifiable": IssueCode("INFO", "give the reference in the form the skill's verifier reads, or set gate.verifiers for the skill"),
    # the batch decision (tdm_dagster.gate.outcome)
    "batch.rejected": _e("fix the batch-level problems named here and resubmit the file"),
    "batch.salvaged": IssueCode("WARNING", "kept from a batch that failed as a whole: see the batch's report for why, or set gate.on_batch_failure to reject"),
}
"""Code -> severity and suggestion."""


def issue_code(code: str) -> IssueCode | None:
    """The entry for ``code``: its own, else its family's (the longest ``..._`` prefix); None if unknown."""
    if code in ISSUE_CODES:
        return ISSUE_CODES[code]
    families = [key for key in ISSUE_CODES if key.endswith("_") and code.startswith(key)]
    return ISSUE_CODES[max(families, key=len)] if families else None
