"""Train the full-precision reference ResNet or the weight-shared supernet; resumable.

Supernet recipe, every batch: the all-8-bit configuration with the label loss, then the
all-2-bit configuration and ``num_random`` random layer-wise configurations, each distilled
from the 8-bit network's detached soft outputs (sandwich rule + in-place distillation).

Everything random is derived from (seed, epoch, step), so a run resumed from its last
checkpoint continues exactly where it stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from tqdm import tqdm

from supernets.data import DataSpec, Split, check_count, check_split, data_spec, load_data, normalize
from supernets.evaluate import accuracy
from supernets.families import architecture, build_supernet, config_from_dict, load_arch_config
from supernets.float_net import FloatSupernet, warm_start
from supernets.foundation.cliargs import arg
from supernets.foundation.devices import check_device
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_torch_save, safe_load
from supernets.supernet import ArchConfig

AUGMENTATIONS = ("flip-crop", "crop", "flip", "none")
"""``--augment`` choices: the shipped recipe's crop and flip, the crop alone (a flip is wrong for digits), the flip
alone, none. ``--augment flip,crop`` (any order, ``,`` or ``-``) names the same as ``flip-crop``."""


def augmentation(text: str) -> str:
    """The canonical :data:`AUGMENTATIONS` name of ``text`` (``"flip,crop"`` -> ``"flip-crop"``), or a clear error."""
    parts = {p.strip() for p in str(text).replace(",", "-").replace("+", "-").split("-") if p.strip()}
    if parts == {"none"}:
        return "none"
    if parts and parts <= {"flip", "crop"}:
        return "-".join(p for p in ("flip", "crop") if p in parts)
    raise UsageError(
        f"--augment {text!r}: give flip,crop (the shipped recipe), crop (no flip: digits, text), flip, or none"
    )


@dataclass
class TrainArgs:
    """Arguments of ``abn-gym supernet train``."""

    mode: str = arg("supernet", "'float' trains the plain full-precision reference, 'supernet' the switchable one")
    arch: str = arg(
        "resnet20", "architecture name from supernets.families.ARCHITECTURES (resnet20, mobilenetv2-tiny, ...)"
    )
    arch_config: str | None = arg(
        None, "JSON or TOML file of a family's fields (family = resnet, mobilenetv2, plain, yours)"
    )
    out: str | None = arg(None, "run directory: last.pt (resume), final.pt, log.csv (default: runs/<arch>-<mode>)")
    epochs: int = arg(4, "epochs over the 55,000-image train split")
    batch_size: int = arg(128, "images per batch")
    lr: float = arg(0.01, "peak learning rate of SGD (cosine decay after a short linear warm-up)")
    weight_decay: float = arg(5e-5, "weight decay on conv/linear weights (never on steps or BN)")
    seed: int = arg(0, "seed for data order, augmentation and sampled configurations")
    warm_start: str | None = arg(None, "float checkpoint (final.pt of a float run) to start from (either mode)")
    num_random: int = arg(2, "random layer-wise configurations distilled per batch")
    ckpt_every: int = arg(100, "also save the resume state every this many steps (and at every epoch end)")
    eval_limit: int | None = arg(None, "images of the val split evaluated after each epoch (all when None)")
    train_limit: int | None = arg(None, "use only the first N training images (smoke tests)")
    data_dir: str | None = arg(None, "Fashion-MNIST directory (default: ABN_DATA_DIR, the Debian package, torchvision)")
    data: str | None = arg(None, "your own dataset: .npz of train/val/test images and labels (default: Fashion-MNIST)")
    augment: str = arg(
        "flip-crop",
        "training augmentation: flip,crop (random crop with 2-pixel padding, and horizontal flip), crop (no flip: "
        "digits, text), flip, or none",
    )
    threads: int | None = arg(None, "torch intra-op threads (default: torch's choice)")
    device: str = arg("cpu", "torch device to train on: cpu or cuda (cuda:<n>); the checkpoints load on any device")


def augment(
    images: torch.Tensor, gen: torch.Generator, pad: int = 2, data: DataSpec | None = None, kind: str = "flip-crop"
) -> torch.Tensor:
    """Random crop with ``pad`` pixels of zero padding and random horizontal flip (uint8 in, float out).

    ``data`` gives the normalisation (default: Fashion-MNIST's). ``kind`` (:data:`AUGMENTATIONS`):
    ``"crop"`` leaves out the flip, ``"none"`` only normalises.
    """
    kind = augmentation(kind)
    if kind == "none":
        return normalize(images) if data is None else normalize(images, data.mean, data.std)
    n, c, h, w = images.shape
    if kind == "flip":
        out = images.float()
        flip = torch.rand(n, generator=gen) < 0.5
        out[flip] = out[flip].flip(-1)
        return normalize(out.to(torch.uint8)) if data is None else normalize(out.to(torch.uint8), data.mean, data.std)
    padded = F.pad(images.float(), (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    if c == 1:  # the shipped supernets' exact augmentation
        out = padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)
    else:
        at_n, at_c = torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None]
        out = padded[at_n, at_c, rows[:, None], cols[:, None]]
    if kind == "flip-crop":
        flip = torch.rand(n, generator=gen) < 0.5
        out[flip] = out[flip].flip(-1)
    if data is None:
        return normalize(out.to(torch.uint8))
    return normalize(out.to(torch.uint8), data.mean, data.std)


def lr_at(step: int, total: int, peak: float, warmup_frac: float = 0.03) -> float:
    """Linear warm-up then cosine decay to zero, as a function of the global step."""
    warm = max(1, int(total * warmup_frac))
    if step < warm:
        return peak * (step + 1) / warm
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv and linear weights only."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (decay if name.endswith("weight") and p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def random_config(num_layers: int, gen: torch.Generator, bit_choices: tuple[int, ...]) -> list[int]:
    """A uniformly random layer-wise configuration over ``bit_choices`` (the config's trained bit-widths)."""
    idx = torch.randint(0, len(bit_choices), (num_layers,), generator=gen)
    return [bit_choices[i] for i in idx.tolist()]


def run_config(args: TrainArgs, config: ArchConfig | None = None) -> ArchConfig:
    """The architecture a run trains: ``config`` when given, else ``--arch-config``, else ``--arch``."""
    if config is not None:
        if not isinstance(config, ArchConfig):
            raise UsageError(
                f"config= takes an architecture config (supernets.resnet.ResNetConfig, MobileNetV2Config, PlainConfig "
                f"or your own family's), not a {type(config).__name__} object: the supernets are built from a config, "
                "not from a torch module; write the architecture as a config or an --arch-config TOML file "
                "(docs/guides/bring-your-own-network.md)"
            )
        return config.validate()
    if args.arch_config is not None:
        return load_arch_config(args.arch_config)
    return architecture(args.arch)


def arch_label(args: TrainArgs) -> str:
    """What a run's architecture is called: --arch, or the stem of --arch-config."""
    return Path(args.arch_config).stem if args.arch_config else args.arch


def load_warm_start(args: TrainArgs, config: ArchConfig | None = None) -> FloatSupernet:
    """The float model of ``args.warm_start``, refused early if it is a supernet or another architecture."""
    config = run_config(args, config)
    ckpt = safe_load(args.warm_start)
    trained = ckpt.get("args", {})
    if trained.get("mode", "float") != "float":
        raise UsageError(
            f"--warm-start {args.warm_start} is not a float run's checkpoint; give a --mode float final.pt"
        )
    if "config" in ckpt:
        found = config_from_dict(ckpt["config"], f"--warm-start {args.warm_start}")
        same = dataclasses.replace(found, bit_choices=config.bit_choices) == config
    else:  # a resume state (last.pt) names its architecture only
        same = trained.get("arch", "resnet20") == args.arch and not trained.get("arch_config") and not args.arch_config
    if not same:
        raise UsageError(
            f"--warm-start {args.warm_start} was trained as "
            f"{trained.get('arch_config') or trained.get('arch', 'resnet20')!r}, not {arch_label(args)!r}; pass the "
            "matching --arch or --arch-config"
        )
    model = FloatSupernet(config)
    model.load_state_dict(ckpt["model"])
    return model


def build_model(args: TrainArgs, config: ArchConfig | None = None, calib: Split | None = None) -> torch.nn.Module:
    """The model the run trains, warm-started when asked (``calib``: train split for the LSQ steps)."""
    config = run_config(args, config)
    if args.mode == "float":
        # A warm-started float run is the supernet's control: the same two-phase schedule without quantization.
        return load_warm_start(args, config) if args.warm_start else FloatSupernet(config)
    if args.mode != "supernet":
        raise UsageError(f"--mode must be 'float' or 'supernet', got {args.mode!r}")
    net = build_supernet(config)
    if args.warm_start:
        warm_start(net, load_warm_start(args, config))
    if calib is None:
        calib = load_data(data_spec(args.data), "train", args.data_dir)
    net.init_quantizers(calib.inputs(slice(0, 512)))
    return net


def logged_bits(bit_choices: tuple[int, ...]) -> list[int]:
    """The uniform configurations logged after each epoch: widest, middle (geometric) and narrowest, widest first.

    For the shipped 2..8 bits these are 8, 4 and 2.
    """
    bits = sorted(bit_choices)
    middle = min(bits, key=lambda b: abs(math.log(b) - 0.5 * math.log(bits[0] * bits[-1])))
    return sorted({bits[-1], middle, bits[0]}, reverse=True)


def evaluate_supernet(model: torch.nn.Module, split: Split, args: TrainArgs) -> dict[str, float]:
    """Val accuracies logged after each epoch (uniform 8/4/2 for a supernet)."""
    if isinstance(model, FloatSupernet):
        model.eval()
        n = len(split) if args.eval_limit is None else min(args.eval_limit, len(split))
        device = next(model.parameters()).device
        with torch.inference_mode():
            pred = torch.cat(
                [model(split.inputs(slice(s, min(s + 2000, n)), device)).argmax(1).cpu() for s in range(0, n, 2000)]
            )
        model.train()
        return {"val_acc": float((pred == split.labels[:n]).float().mean())}
    model.freeze()
    out = {
        f"val_acc_w{b}": accuracy(model, split, [b] * model.num_switchable, args.eval_limit, args.device)
        for b in logged_bits(model.bit_choices)
    }
    model.unfreeze()
    model.train()
    return out


def default_out(args: TrainArgs) -> Path:
    """Where a run goes without --out: ``runs/<arch>-<mode>`` (a float and a supernet run never share one)."""
    return Path("runs") / f"{arch_label(args)}-{args.mode}"


def train(args: TrainArgs, config: ArchConfig | None = None) -> Path:
    """Run (or resume) training; returns the path of ``final.pt``.

    Args:
        args: the run's settings (see :class:`TrainArgs`).
        config: train this architecture instead of ``args.arch`` / ``args.arch_config``; it is
            recorded in the run's checkpoints (``args.arch_config`` should then be None).
    """
    if args.mode not in ("float", "supernet"):
        raise UsageError(f"--mode must be 'float' or 'supernet', got {args.mode!r}")
    check_device(args.device)
    args = dataclasses.replace(args, augment=augmentation(args.augment))
    config = run_config(args, config)
    data = data_spec(args.data)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.out is None:
        args = dataclasses.replace(args, out=str(default_out(args)))
    out = Path(args.out)
    train_split, val_split = load_data(data, "train", args.data_dir), load_data(data, "val", args.data_dir)
    for split in (train_split, val_split):
        what = f"architecture {arch_label(args)}"
        check_split(split, config.in_channels, config.input_size, config.num_classes, what)
    check_count(args.train_limit, "train", len(train_split), "--train-limit")
    check_count(args.eval_limit, "val", len(val_split), "--eval-limit")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    n = len(train_split) if args.train_limit is None else min(args.train_limit, len(train_split))
    steps_per_epoch = n // args.batch_size
    if steps_per_epoch < 1:
        raise UsageError(
            f"{n} training images make no batch of {args.batch_size}; lower --batch-size or raise --train-limit"
        )
    total_steps = steps_per_epoch * args.epochs

    model = build_model(args, config, train_split).to(args.device)
    opt = torch.optim.SGD(param_groups(model, args.weight_decay), lr=args.lr, momentum=0.9, nesterov=True)
    epoch, step = 0, 0
    last = out / "last.pt"
    if last.exists():
        state = safe_load(last)
        if state["args"]["mode"] != args.mode:
            raise UsageError(f"{last} belongs to a {state['args']['mode']!r} run; use another --out")
        if state["args"].get("arch", "resnet20") != args.arch or state["args"].get("arch_config") != args.arch_config:
            raise UsageError(
                f"{last} belongs to a {state['args'].get('arch_config') or state['args'].get('arch', 'resnet20')!r} "
                "run; use another --out"
            )
        if state["args"].get("augment", "flip-crop") != args.augment:
            raise UsageError(
                f"{last} was trained with --augment {state['args'].get('augment', 'flip-crop')}; resume it with "
                "that, or use another --out"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        epoch, step = state["epoch"], state["step"]
        print(f"resuming {out} at epoch {epoch}, step {step}")
    log_path = out / "log.csv"
    fields = [
        "epoch",
        "step",
        "lr",
        "loss",
        "seconds",
        "val_acc",
        *(f"val_acc_w{b}" for b in logged_bits(config.bit_choices)),
    ]
    if not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(fields)

    def save_state(e: int, s: int) -> None:
        atomic_torch_save(
            {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": e, "step": s, "args": asdict(args)},
            last,
        )

    model.train()
    while epoch < args.epochs:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed * 10_007 + epoch))
        bar = tqdm(
            range(step, steps_per_epoch),
            desc=f"{args.mode} epoch {epoch + 1}/{args.epochs}",
            initial=step,
            total=steps_per_epoch,
            dynamic_ncols=True,
        )
        running, t0 = 0.0, time.time()
        for s in bar:
            gen = torch.Generator().manual_seed((args.seed * 1_000_003 + epoch) * 100_003 + s)
            idx = order[s * args.batch_size : (s + 1) * args.batch_size]
            x, y = augment(train_split.images[idx], gen, data=data, kind=args.augment), train_split.labels[idx]
            x, y = x.to(args.device), y.to(args.device)
            lr = lr_at(epoch * steps_per_epoch + s, total_steps, args.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            if isinstance(model, FloatSupernet):
                loss = F.cross_entropy(model(x), y)
                loss.backward()
            else:
                logits8 = model(x, [model.bit_choices[-1]] * model.num_switchable)
                loss = F.cross_entropy(logits8, y)
                loss.backward()
                soft = logits8.detach().softmax(-1)
                choices = cast("tuple[int, ...]", model.bit_choices)  # nn.Module's __getattr__ hides its type
                configs = [[choices[0]] * model.num_switchable]
                configs += [random_config(model.num_switchable, gen, choices) for _ in range(args.num_random)]
                for cfg in configs:
                    kd = -(soft * model(x, cfg).log_softmax(-1)).sum(-1).mean()
                    kd.backward()
                    loss = loss + kd.detach()
            opt.step()
            running = 0.98 * running + 0.02 * loss.item() if s > step else loss.item()
            bar.set_postfix(loss=f"{running:.3f}", lr=f"{lr:.4f}")
            if (s + 1) % args.ckpt_every == 0 and s + 1 < steps_per_epoch:
                save_state(epoch, s + 1)
        bar.close()
        metrics = evaluate_supernet(model, val_split, args)
        row = {
            "epoch": epoch + 1,
            "step": (epoch + 1) * steps_per_epoch,
            "lr": lr,
            "loss": round(running, 5),
            "seconds": round(time.time() - t0, 1),
            **metrics,
        }
        with open(log_path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in fields])
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        epoch, step = epoch + 1, 0
        save_state(epoch, 0)
    final = out / "final.pt"
    if torch.device(args.device).type != "cpu":
        model.cpu()  # final.pt holds CPU tensors whatever the device trained on
    atomic_torch_save(
        {
            "model": model.state_dict(),
            "config": config.as_dict(),
            "kind": args.mode,
            "args": asdict(args),
            "data": data.as_dict(),
        },
        final,
    )
    return final
