"""``hook transform``: a rule target's input (InputPath, InputTransformer) offline; and the input
options ``hook listen`` and ``hook replay`` share."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from hookcli.errors import UsageError

if TYPE_CHECKING:
    from hookcli.rules import RuleSource
    from hookcli.transform import RuleTarget

group = typer.Typer(
    help="See the input an EventBridge rule's target would receive, offline.",
    no_args_is_help=True,
)

InputPathOpt = Annotated[
    str | None,
    typer.Option(
        "--input-path",
        help="Deliver what this JSON path selects (the target's InputPath), e.g. '$.detail'.",
        show_default=False,
    ),
]
InputTransformerOpt = Annotated[
    str | None,
    typer.Option(
        "--input-transformer",
        help='Deliver the filled template of this InputTransformer ({"InputPathsMap": ..., '
        '"InputTemplate": ...}): JSON, @file or -. Webhooks are still delivered as they came.',
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Attach ``hook transform`` to the root app."""
    app.add_typer(group, name="transform")


def rule_target(
    input_path: str | None, input_transformer: str | None, rule_name: str
) -> RuleTarget | None:
    """The RuleTarget for ``--input-path`` / ``--input-transformer`` (None: the event itself).

    ``rule_name`` stands in for ``<aws.events.rule-name>`` (and names the rule in the ARN).
    """
    from hookcli.cli.inputs import read_text
    from hookcli.transform import RuleTarget, TargetInput, load_transformer

    if input_path is not None and input_transformer is not None:
        # PutTargets' own rule and wording.
        raise UsageError(
            "Only one of Input, InputPath, or InputTransformer must be provided for target hook.",
            hint="give --input-path or --input-transformer, not both",
        )
    if input_path is not None:
        return RuleTarget(TargetInput.input_path(input_path), rule_name)
    if input_transformer is not None:
        transformer = load_transformer(read_text(input_transformer, "--input-transformer"))
        return RuleTarget(TargetInput("transformer", transformer=transformer), rule_name)
    return None


@group.command("test")
def test(
    transformer: Annotated[
        str | None,
        typer.Argument(
            help="InputTransformer: JSON text, @file or - (omit with --input-path).",
            show_default=False,
        ),
    ] = None,
    event: Annotated[
        str | None,
        typer.Argument(help="Event: JSON text, @file, or - for stdin.", show_default=False),
    ] = None,
    input_path: InputPathOpt = None,
    rule_name: Annotated[
        str, typer.Option("--rule-name", help="What <aws.events.rule-name> stands for.")
    ] = "my-rule",
    rule_arn: Annotated[
        str | None,
        typer.Option(
            "--rule-arn",
            help="What <aws.events.rule-arn> stands for. Default: built from --rule-name and "
            "the event's region and account.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"input": TEXT} (or {"error": ...}) as one line.'),
    ] = False,
) -> None:
    """Print the input a rule's target receives for EVENT: TRANSFORMER's filled template, or
    what --input-path selects.

    Exit 0 with the input on stdout; 1 when EventBridge would deliver nothing for this event
    (a path that selects nothing, a filled JSON template that is not JSON); 2 for a transformer
    EventBridge would reject (PutTargets' reason) or an event that is not JSON.
    """
    import json

    from hookcli.cli.inputs import read_text
    from hookcli.events import load_json_object
    from hookcli.transform import RuleTarget, TransformError

    if input_path is not None and event is None:
        transformer, event = None, transformer  # `hook transform test --input-path P EVENT`
    if event is None:
        raise UsageError(
            "give TRANSFORMER and EVENT, or --input-path PATH and EVENT",
            hint="e.g. hook transform test @transformer.json @event.json",
        )
    if (transformer is None) == (input_path is None):
        raise UsageError("give exactly one of TRANSFORMER and --input-path")
    spec = rule_target(input_path, transformer, rule_name)
    assert spec is not None
    if rule_arn is not None:
        spec = RuleTarget(spec.input, spec.rule_name, rule_arn)
    document = load_json_object(read_text(event, "event"), "event")
    try:
        text = spec.render(document)
    except TransformError as exc:
        if as_json:
            sys.stdout.write(json.dumps({"error": str(exc)}, ensure_ascii=False) + "\n")
        else:
            sys.stderr.write(f"No input: {exc}\n")
        raise typer.Exit(1) from None
    line = json.dumps({"input": text}, ensure_ascii=False) if as_json else text
    sys.stdout.write(line + "\n")


def rule_source(
    rule: str | None, bus: str | None, target_id: str | None, given: tuple[object, ...]
) -> RuleSource | None:
    """``--from-rule`` (with ``--bus``, ``--target-id``): it replaces the pattern and input."""
    from hookcli.rules import RuleSource

    if rule is None:
        if bus is not None or target_id is not None:
            raise UsageError("--bus and --target-id go with --from-rule RULE")
        return None
    if any(value for value in given):
        raise UsageError(
            "--from-rule takes the pattern and the input from the rule",
            hint="drop --source, --detail-type, --pattern, --input-path and --input-transformer",
        )
    return RuleSource(rule, bus, target_id)
