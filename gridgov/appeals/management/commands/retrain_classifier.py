"""Retrain the category model on confirmed history (what the nightly retrain_classifier task does):
after loading demo history, after a catalogue change, or by hand. See gridgov.appeals.intake.classifier
for which appeals count as confirmed."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gridgov.appeals.intake.classifier import RetrainError, classifier_retrain


def _share(text):
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"--holdout {text!r}: expected a share such as 0.2") from None
    if not 0 <= value < 1:
        raise CommandError(f"--holdout {text!r}: expected a share in [0, 1)")
    return value


class Command(BaseCommand):
    help = "用已确认分类的诉求重新训练分类模型 / retrain the appeal category model on confirmed history"

    def add_arguments(self, parser):
        parser.add_argument(
            "--min-per-class",
            type=int,
            default=settings.CLASSIFIER_MIN_PER_CLASS,
            help="categories with fewer confirmed appeals are left to the keyword rules",
        )
        parser.add_argument(
            "--holdout",
            type=_share,
            default=0.2,
            help="share held out (stratified) to measure accuracy; 0 skips the measurement",
        )
        parser.add_argument("--max-rows", type=int, default=200_000, help="newest confirmed appeals used at most")
        parser.add_argument(
            "--min-top1",
            type=float,
            default=0.0,
            help="do not replace the model when held-out top-1 accuracy is below this",
        )
        parser.add_argument("--output", help=f"model file (default: {settings.CLASSIFIER_MODEL_PATH})")

    def handle(self, *args, min_per_class, holdout, max_rows, min_top1, output=None, **options):
        if min_per_class < 1 or max_rows < 2:
            raise CommandError("--min-per-class must be at least 1 and --max-rows at least 2")
        try:
            s = classifier_retrain(
                min_per_class=min_per_class,
                holdout=holdout,
                path=output,
                max_rows=max_rows,
                min_top1=min_top1,
                actor="manage.py retrain_classifier",
            )
        except RetrainError as exc:
            raise CommandError(f"未训练 / not trained: {exc}") from None
        self.stdout.write(
            f"分类 {s['classes']} 个，样本 {s['rows']} 条（训练 {s['train']}，留出 {s['held_out']}）"
            f" / {s['classes']} classes, {s['rows']} appeals ({s['train']} train, {s['held_out']} held out)"
        )
        if s["dropped_classes"]:
            self.stdout.write(
                f"样本不足未纳入 / left out (< {min_per_class}): "
                + ", ".join(f"{c}×{n}" for c, n in s["dropped_classes"].items())
            )
        if s["top1"] is not None:
            self.stdout.write(f"留出集准确率 / held-out accuracy: top-1 {s['top1']:.3f}, top-3 {s['top3']:.3f}")
        if not s["written"]:
            raise CommandError(f"模型未替换 / model not replaced: {s['reason']}")
        self.stdout.write(f"模型已写入 / model written: {s['path']} ({s['bytes'] / 1e6:.1f} MB, {s['seconds']} s)")
