"""Multimodal rating / click model: numeric, categorical, multi-hot and text inputs in one network.

A DeepFM-like PyTorch model (Guo et al., "DeepFM: a factorization-machine based neural network
for CTR prediction", IJCAI 2017) over a declared feature schema: every input column becomes a
``dim``-vector (embedding design pattern), and the prediction is

    ŷ = b + Σ_f wᶠ(x)  +  Σ_{f<g} ⟨eᶠ(x), eᵍ(x)⟩  +  MLP([e¹(x); …; eᶠ(x); z])

(global bias, first-order terms, FM pairwise interactions (Rendle, ICDM 2010), and a deep part).
Text goes in through a trainable hashed n-gram bag or a frozen all-MiniLM-L6-v2 sentence
embedding with a trainable projection. See ``docs/multimodal.md``.

Requires the ``torch`` extra (``text_encoder="minilm"`` also the ``text`` extra); importing this
module does not import torch.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, ClassVar, Iterator, Literal, Mapping, Sequence
from typing import Any, ClassVar, Literal, Mapping, Sequence
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..._progress import progress
from ..._threads import torch_threads
from ...data._frames import to_pandas
from ...data.idmap import IdMap
from ...data.readers import maybe_int
from ...array_specs import ArraySpec, floats, ids, index, indptr
from ...exceptions import DataError, FormatError, MissingExtraError, UnknownIdError
from ..base import Model, Recommender, torch_state_specs
from .schema import Encoded, Schema, check_fields
from .text_encoders import MINILM_DIM

logger = logging.getLogger("tastebud")

Task = Literal["regression", "binary"]


def _require_torch(what: str = "MultimodalModel") -> Any:
    try:
        import torch
    except ImportError as e:
        raise MissingExtraError("torch", "torch", what) from e
    return torch


def _id_fields_of(schema: Schema, params: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The (user, item) id fields ``recommend`` ranks over: the parameters', else the two id fields."""
    ids = schema.names("id")
    u = params["user_field"] or (ids[0] if len(ids) == 2 else None)
    i = params["item_field"] or (ids[1] if len(ids) == 2 else None)
    return u, i


class _Ranking(Recommender):
    """``Recommender.recommend`` (id mapping, seen filtering, top-k, padding) over a
    :class:`MultimodalModel`'s known users and items, scored by its network."""

    def __init__(self, model: "MultimodalModel"):
        R = model.rec_
        self.model = model
        uidx = pd.Index(R["users"]).get_indexer(R["seen_u"])
        iidx = pd.Index(R["items"]).get_indexer(R["seen_i"])
        ok = (uidx >= 0) & (iidx >= 0)  # training rows whose user or item fell in the OOV bucket are skipped
        seen = sp.csr_matrix((np.ones(int(ok.sum()), dtype=np.float32), (uidx[ok], iidx[ok])),
                             shape=(len(R["users"]), len(R["items"])))
        self._set_interactions(model.users_, model.items_, seen)
        self.fitted_ = True

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return self.model._user_scores(user_idx)


def _external_ids(keys: np.ndarray, kind: str) -> IdMap:
    """Ids of files written before the id types were saved: the vocabulary's canonical strings,
    as integers when every one is an integer literal."""
    return IdMap(maybe_int(list(keys)) if len(keys) else np.zeros(0, np.int64), kind)


class MultimodalModel(Model):
    """DeepFM-style network over declared numeric / categorical / id / multi-hot / text fields.

    ``MultimodalModel(fields={"user": "id", "item": "id", "age": "numeric", "occupation":
    "categorical", "genres": "multi_hot", "title": "text"}, target="rating").fit(train_df)``
    then ``.predict(test_df)`` — one DataFrame in, one array out.

    Parameters
    ----------
    fields : column → kind (``numeric``, ``categorical``, ``id``, ``multi_hot``, ``text``).
    target : the column to predict.
    task : ``"regression"`` (squared loss; ratings) or ``"binary"`` (logistic loss on 0/1 targets;
        ``predict`` returns probabilities, higher ranks first in ``recommend``).
    text_encoder : ``"hashed"`` (trainable hashed word n-gram bag) or ``"minilm"`` (frozen
        all-MiniLM-L6-v2 sentence embeddings, computed once and cached; ``text`` extra).
    factors : embedding size of every field (the FM part's latent dimension; called ``dim`` before).
    hidden : MLP hidden layer widths (``()`` gives a plain FM over the field embeddings).
    dropout : MLP dropout.
    reg : L2 weight on the embeddings and first-order weights each example uses (per-example
        regularisation as in libFM/SGD MF), and AdamW weight decay ``reg`` on dense weights.
    lr : Adam(W) learning rate.
    batch_size : mini-batch size.
    epochs : maximum epochs.
    patience : early stopping after this many epochs without validation improvement; the best
        epoch's weights are kept. The learning rate is halved when validation loss stalls.
    validation_fraction : share of the training rows held out for early stopping (0 disables
        early stopping and trains ``epochs`` epochs).
    n_buckets : hash buckets of the hashed text encoder.
    ngram_range : word n-gram lengths (min, max) of the hashed text encoder.
    min_count : categories / multi-hot members seen fewer times go to the out-of-vocabulary bucket.
    user_field : the id field of the users ``recommend`` ranks for (default: the first of exactly two ``id`` fields).
    item_field : the id field of the items ``recommend`` ranks (default: the second of exactly two ``id`` fields).
    clip : clip regression predictions to the training target range.
    device : ``"cpu"``, ``"cuda"``… (None: CUDA when available, else CPU).
    random_state : seed of initialisation, shuffling and the validation split.
    num_threads : torch CPU threads (None: 1, see docs).
    verbose : progress bar over epochs (None: on a terminal only).
    """

    registry_name: ClassVar[str] = "multimodal"
    demo_params: ClassVar[dict[str, Any]] = {"epochs": 3}
    renamed_params: ClassVar[dict[str, str]] = {"dim": "factors"}

    def __init__(self, fields: Mapping[str, str] | None = None, target: str = "rating", task: Task = "regression",
                 text_encoder: Literal["hashed", "minilm"] = "hashed", factors: int = 16, hidden: Sequence[int] = (64, 32),
                 dropout: float = 0.1, reg: float = 0.05, lr: float = 3e-3, batch_size: int = 1024, epochs: int = 30,
                 patience: int = 3, validation_fraction: float = 0.1, n_buckets: int = 2**16,
                 ngram_range: Sequence[int] = (1, 2), min_count: int = 1, user_field: str | None = None,
                 item_field: str | None = None, clip: bool = True, device: str | None = None,
                 random_state: int | None = 0, num_threads: int | None = None, verbose: bool | None = None):
        self.fields = dict(fields) if fields is not None else None
        self.target = target
        self.task = task
        self.text_encoder = text_encoder
        self.factors = factors
        self.hidden = list(hidden)
        self.dropout = dropout
        self.reg = reg
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.n_buckets = n_buckets
        self.ngram_range = list(ngram_range)
        self.min_count = min_count
        self.user_field = user_field
        self.item_field = item_field
        self.clip = clip
        self.device = device
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> dict[str, str]:
        if self.fields is None:
            raise ValueError("fields is required: a dict column -> kind, e.g. {'user': 'id', 'item': 'id'}")
        fields = check_fields(self.fields)
        if self.target in fields:
            raise ValueError(f"target {self.target!r} is also declared as an input field")
        if self.task not in ("regression", "binary"):
            raise ValueError(f"task must be 'regression' or 'binary', got {self.task!r}")
        if self.text_encoder not in ("hashed", "minilm"):
            raise ValueError(f"text_encoder must be 'hashed' or 'minilm', got {self.text_encoder!r}")
        for name in ("factors", "batch_size", "epochs", "n_buckets"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if not (self.lr > 0 and self.reg >= 0 and 0 <= self.dropout < 1):
            raise ValueError(f"need lr > 0, reg >= 0, 0 <= dropout < 1; got lr={self.lr!r}, reg={self.reg!r}, dropout={self.dropout!r}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience!r}")
        ids = [c for c, k in fields.items() if k == "id"]
        for name in ("user_field", "item_field"):
            v = getattr(self, name)
            if v is not None and fields.get(v) != "id":
                raise ValueError(f"{name}={v!r} must name a field declared as 'id'; id fields are {ids}")
        return fields

    def _torch_device(self, torch: Any) -> Any:
        if self.device is not None:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _target(self, df: pd.DataFrame) -> np.ndarray:
        if self.target not in df.columns:
            raise DataError(f"fit: target column {self.target!r} not found; columns are {list(df.columns)}")
        y = pd.to_numeric(df[self.target], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(y).any() or np.isinf(y).any():
            row = int(np.flatnonzero(~np.isfinite(y))[0])
            raise DataError(f"fit: target {self.target!r} is missing or not a finite number at row {row} ({df[self.target].iloc[row]!r})")
        if self.task == "binary" and not np.isin(y, (0.0, 1.0)).all():
            bad = y[~np.isin(y, (0.0, 1.0))][0]
            raise DataError(f"fit: task='binary' needs a 0/1 target, column {self.target!r} holds {bad!r}")
        return y

    # ------------------------------------------------------------------ fit
    def fit(self, df: Any) -> "MultimodalModel":
        """Fit on a DataFrame holding the declared field columns and the target column."""
        torch = _require_torch()
        fields = self._check_params()
        if self.text_encoder == "minilm" and "text" in fields.values():
            from .text_encoders import require_text_extra

            require_text_extra()
        from . import nn as mnn

        df = to_pandas(df, "fit")
        if len(df) == 0:
            raise DataError("fit: the training data is empty")
        y = self._target(df)
        schema = Schema(fields, self.text_encoder, self.n_buckets, tuple(self.ngram_range), self.min_count).fit(df)
        enc = schema.transform(df)
        self.schema_ = schema
        self.y_min_, self.y_max_ = float(y.min()), float(y.max())
        self.y_mean_ = float(y.mean())
        init = self.y_mean_ if self.task == "regression" else math.log((self.y_mean_ + 1e-6) / (1 - self.y_mean_ + 1e-6))
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        n = len(df)
        n_val = int(round(self.validation_fraction * n)) if n >= 10 else 0
        perm = rng.permutation(n)
        val_rows, tr_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        device = self._torch_device(torch)
        with torch_threads(self.num_threads):
            torch.manual_seed(seed)
            sizes = schema.cardinalities()
            net = mnn.MultimodalNet(len(schema.numeric), sizes["cat"], sizes["bag"], sizes["dense"], dim=int(self.factors),
                                    hidden=[int(h) for h in self.hidden], dropout=float(self.dropout), init_bias=init).to(device)
            self.history_ = self._train(torch, mnn, net, enc, y, tr_rows, val_rows, device, seed)
        self.net_ = net.cpu().eval()
        self.device_ = device
        self._set_recommend_tables(df, enc)
        self.fitted_ = True
        return self

    def _loss_fn(self, torch: Any) -> Any:
        if self.task == "regression":
            return torch.nn.functional.mse_loss
        return torch.nn.functional.binary_cross_entropy_with_logits

    def _train(self, torch: Any, mnn: Any, net: Any, enc: Encoded, y: np.ndarray, tr_rows: np.ndarray,
               val_rows: np.ndarray, device: Any, seed: int) -> list[dict[str, float]]:
        emb_params = [p for name, p in net.named_parameters() if name.startswith(("cat_", "bag_"))]
        dense_params = [p for name, p in net.named_parameters() if not name.startswith(("cat_", "bag_")) and name != "bias"]
        opt = torch.optim.AdamW([{"params": emb_params, "weight_decay": 0.0},
                                 {"params": dense_params, "weight_decay": float(self.reg)},
                                 {"params": [net.bias], "weight_decay": 0.0}], lr=float(self.lr))
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0)
        loss_fn = self._loss_fn(torch)
        tr_enc, tr_y = enc.take(tr_rows), y[tr_rows]
        val_enc, val_y = (enc.take(val_rows), y[val_rows]) if len(val_rows) else (None, None)
        loader = mnn.make_loader(tr_enc, tr_y, int(self.batch_size), shuffle=True, seed=seed)
        best, best_state, bad_epochs = math.inf, None, 0
        history: list[dict[str, float]] = []
        bar = progress(range(int(self.epochs)), verbose=self.verbose, desc="MultimodalModel", unit="epoch")
        for epoch in bar:
            net.train()
            total, count = 0.0, 0
            for batch, yb in loader:
                batch = mnn.to_device(batch, device)
                yb = yb.to(device)
                pred, pen = net(batch["num"], batch["cat"], batch["bags"], batch["dense"], with_penalty=True)
                loss = loss_fn(pred, yb)
                obj = loss + float(self.reg) * pen if self.reg else loss
                opt.zero_grad(set_to_none=True)
                obj.backward()
                opt.step()
                total += float(loss.detach()) * len(yb)
                count += len(yb)
            rec = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "lr": opt.param_groups[0]["lr"]}
            if val_enc is not None:
                out = torch.from_numpy(mnn.predict_encoded(net, val_enc, device))
                vl = float(loss_fn(self._clip_t(torch, out), torch.from_numpy(val_y.astype(np.float32))))
                rec["val_loss"] = vl
                sched.step(vl)
                if vl < best - 1e-6:
                    best, bad_epochs = vl, 0
                    best_state = copy.deepcopy(net.state_dict())
                else:
                    bad_epochs += 1
            history.append(rec)
            bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k != "epoch"})
            logger.debug("MultimodalModel epoch %s", rec)
            if val_enc is not None and bad_epochs >= int(self.patience):
                break
        bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)
        return history

    def _clip_t(self, torch: Any, out: Any) -> Any:
        if self.task == "regression" and self.clip:
            return out.clamp(self.y_min_, self.y_max_)
        return out

    # ------------------------------------------------------------------ predict
    def _output(self, raw: np.ndarray) -> np.ndarray:
        raw = raw.astype(np.float64)
        if self.task == "binary":
            return 1.0 / (1.0 + np.exp(-raw))
        if self.clip:
            return np.clip(raw, self.y_min_, self.y_max_)
        return raw

    def _predict_encoded(self, enc: Encoded) -> np.ndarray:
        torch = _require_torch()
        from . import nn as mnn

        with torch_threads(self.num_threads):
            return mnn.predict_encoded(self.net_, enc, torch.device("cpu"))

    def predict(self, df: Any) -> np.ndarray:
        """Predictions for each row of ``df`` (ratings, or probabilities for ``task="binary"``).

        Categories, ids and multi-hot members never seen in training use the out-of-vocabulary
        bucket; missing numbers the training mean; missing or empty text an empty bag / zeros.
        """
        self._check_fitted()
        df = to_pandas(df, "predict")
        if len(df) == 0:
            return np.zeros(0)
        return self._output(self._predict_encoded(self.schema_.transform(df)))

    # ------------------------------------------------------------------ recommend
    def _id_fields(self) -> tuple[str | None, str | None]:
        return _id_fields_of(self.schema_, self.get_params())

    def _set_recommend_tables(self, df: pd.DataFrame, enc: Encoded) -> None:
        """Remember, per known user and item, the fields that are constant for it (its side
        features) and the training pairs, so ``recommend`` can score every item for a user."""
        self.rec_ = None
        self.users_ = self.items_ = None
        self._ranker = None
        ufield, ifield = self._id_fields()
        if ufield is None or ifield is None:
            return
        s = self.schema_
        uc, ic = s.categorical.index(ufield), s.categorical.index(ifield)
        uidx, iidx = enc.cat[:, uc], enc.cat[:, ic]
        role = []
        for c in s.layout:
            if c in (ufield, ifield):
                role.append(0 if c == ufield else 1)
                continue
            keys = df[c].astype(str) if s.fields[c] in ("multi_hot", "text") else df[c]
            if (pd.Series(keys.to_numpy()).groupby(iidx).nunique(dropna=False) <= 1).all():
                role.append(1)
            elif (pd.Series(keys.to_numpy()).groupby(uidx).nunique(dropna=False) <= 1).all():
                role.append(0)
            else:
                role.append(2)  # context: neutral value at recommend time
        first_u = pd.Series(np.arange(len(df))).groupby(uidx).first()
        first_i = pd.Series(np.arange(len(df))).groupby(iidx).first()
        first_u, first_i = first_u[first_u.index > 0], first_i[first_i.index > 0]  # drop the OOV bucket
        self.rec_ = {"roles": role, "users": first_u.index.to_numpy(np.int64), "items": first_i.index.to_numpy(np.int64),
                     "utab": enc.take(first_u.to_numpy()), "itab": enc.take(first_i.to_numpy()),
                     "seen_u": uidx.copy(), "seen_i": iidx.copy()}
        # the external ids recommend takes and returns, of the training column's type (ints stay ints)
        self.users_ = self._id_map(df[ufield].to_numpy()[first_u.to_numpy()], s.vocab[ufield][self.rec_["users"] - 1], "user")
        self.items_ = self._id_map(df[ifield].to_numpy()[first_i.to_numpy()], s.vocab[ifield][self.rec_["items"] - 1], "item")

    @staticmethod
    def _id_map(values: np.ndarray, keys: np.ndarray, kind: str) -> IdMap:
        try:
            return IdMap(values, kind)
        except DataError as e:  # a column mixing ints and strings: keep the canonical strings
            warnings.warn(f"MultimodalModel: {kind} ids mix types ({e}); recommend uses their string form", UserWarning,
                          stacklevel=4)
            return IdMap(np.asarray(keys, dtype=str), kind)

    def recommend(self, users: Any, k: int = 10, filter_seen: bool = True, items: Sequence[Any] | None = None,
                  unknown: Literal["raise", "popular"] = "raise", batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for known ``users`` (external ids, as in the training frame: ``"1"`` is not
        ``1``), scoring every training item with its item-level fields and the user's user-level
        fields (fields varying within both — context such as time — take their neutral value).

        The protocol of :meth:`Recommender.recommend <tastebud.models.base.Recommender.recommend>`:
        ``(ids, scores)`` of shape ``(len(users), k)`` best first (1-D for a scalar user), item ids of
        the training column's type, training pairs excluded when ``filter_seen``, rows with fewer
        than ``k`` candidates padded with ``None``/``nan``, ``k`` above the catalogue an error,
        ``items`` restricting the candidates, unknown users raising :class:`UnknownIdError` (or
        ranked by training popularity with ``unknown="popular"``)."""
        self._check_fitted()
        if self.rec_ is None:
            raise ValueError("recommend needs two 'id' fields (user and item); set user_field= and item_field=")
        return self._ranking().recommend(users, k, filter_seen=filter_seen, items=items, unknown=unknown,
                                         batch_size=batch_size)

    def _ranking(self) -> "_Ranking":
        """The protocol's ranking machinery over the known users and items (built once)."""
        if getattr(self, "_ranker", None) is None:
            self._ranker = _Ranking(self)
        return self._ranker

    def _user_scores(self, user_pos: np.ndarray) -> np.ndarray:
        """Scores (len(user_pos), n_items) of every known item for known users (positions in ``rec_["users"]``)."""
        R = self.rec_
        out = np.empty((len(user_pos), len(R["items"])), dtype=np.float32)
        for r, upos in enumerate(np.asarray(user_pos, dtype=np.int64).tolist()):
            sc = self._predict_encoded(self._pair_frame(R, upos))
            out[r] = (1.0 / (1.0 + np.exp(-sc))) if self.task == "binary" else sc
        return out

    def _pair_frame(self, R: dict, upos: int) -> Encoded:
        """Encoded rows (one per item) pairing user ``upos`` with every item."""
        s = self.schema_
        n = len(R["items"])
        utab, itab = R["utab"], R["itab"]
        uone = utab.take(np.full(n, upos))
        roles = R["roles"]
        nn_, nc, nb = len(s.numeric), len(s.categorical), len(s.bag_fields)
        num = np.where(np.asarray(roles[:nn_]) == 1, itab.num, np.where(np.asarray(roles[:nn_]) == 0, uone.num, 0.0)).astype(np.float32)
        rc = np.asarray(roles[nn_:nn_ + nc])
        cat = np.where(rc == 1, itab.cat, np.where(rc == 0, uone.cat, 0)).astype(np.int64)
        bags = []
        for j in range(nb):
            role = roles[nn_ + nc + j]
            bags.append(itab.bags[j] if role == 1 else uone.bags[j] if role == 0 else (np.zeros(n + 1, np.int64), np.zeros(0, np.int64)))
        dense = []
        for j in range(len(s.dense_fields)):
            role = roles[nn_ + nc + nb + j]
            dense.append(itab.dense[j] if role == 1 else uone.dense[j] if role == 0 else np.zeros_like(itab.dense[j]))
        return Encoded(n, num, cat, bags, dense)

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"sd.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        arrays.update(self.schema_.to_arrays())
        if self.rec_ is not None:
            R = self.rec_
            for tab in ("utab", "itab"):
                e = R[tab]
                arrays[f"rec.{tab}.num"], arrays[f"rec.{tab}.cat"] = e.num, e.cat
                for j, (p, ind) in enumerate(e.bags):
                    arrays[f"rec.{tab}.bag{j}.indptr"], arrays[f"rec.{tab}.bag{j}.indices"] = p, ind
                for j, d in enumerate(e.dense):
                    arrays[f"rec.{tab}.dense{j}"] = d
            for key in ("users", "items", "seen_u", "seen_i"):
                arrays[f"rec.{key}"] = R[key]
            arrays["rec.user_ids"], arrays["rec.item_ids"] = self.users_.to_array(), self.items_.to_array()
        return arrays

    def _get_extra(self) -> dict[str, Any]:
        return {"schema": self.schema_.to_json(), "y_min": self.y_min_, "y_max": self.y_max_, "y_mean": self.y_mean_,
                "history": self.history_, "rec_roles": None if self.rec_ is None else self.rec_["roles"]}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"schema": {"fields": "list", "text_encoder": ("hashed", "minilm"), "n_buckets": "int",
                           "ngram_range": "list", "min_count": "int", "stats": "dict"},
                "y_min": "number", "y_max": "number", "y_mean": "number", "history": "~list", "rec_roles": "~list?"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        from .nn import MultimodalNet

        s = Schema.check_saved(extra["schema"])
        if s.fields != check_fields(params["fields"]):
            raise FormatError(f"the saved schema's fields {s.fields} differ from the parameter fields {params['fields']}")
        names = list(s.fields)
        specs = {f"vocab.{names.index(c)}": ArraySpec("str", (f"vocab{names.index(c)}",), unique=True)
                 for c in s.categorical + s.names("multi_hot")}
        vlen = {c: shapes[k][0] if len(shapes.get(k, ())) == 1 else 0
                for c, k in ((c, f"vocab.{names.index(c)}") for c in s.categorical + s.names("multi_hot"))}
        cat = [vlen[c] + 1 for c in s.categorical]
        bag = [vlen[c] + 1 if s.fields[c] == "multi_hot" else s.n_buckets for c in s.bag_fields]
        dense = [MINILM_DIM for _ in s.dense_fields]
        n_sd = sum(k.startswith("sd.") for k in shapes)
        if 2 * (len(cat) + len(bag) + len(dense)) + len(params["hidden"]) > n_sd:
            raise FormatError(f"{n_sd} state-dict arrays (sd.*) cannot hold the network the parameters describe")
        specs.update(torch_state_specs(lambda: MultimodalNet(len(s.numeric), cat, bag, dense, dim=int(params["factors"]),
                                                             hidden=[int(h) for h in params["hidden"]], dropout=0.0), "sd."))
        roles = extra.get("rec_roles")
        if roles is not None:
            if len(roles) != len(s.layout) or any(r not in (0, 1, 2) or isinstance(r, bool) for r in roles):
                raise FormatError(f"extra.rec_roles must hold one of 0, 1, 2 per field ({len(s.layout)}), got {roles!r}")
            ufield, ifield = _id_fields_of(s, params)
            if ufield is None or ifield is None or ufield not in s.categorical or ifield not in s.categorical:
                raise FormatError("extra.rec_roles is set but the schema has no user and item id fields")
            n_u, n_i = vlen[ufield] + 1, vlen[ifield] + 1
            for tab, rows in (("utab", "rec_users"), ("itab", "rec_items")):
                specs[f"rec.{tab}.num"] = floats(rows, len(s.numeric))
                specs[f"rec.{tab}.cat"] = ArraySpec("int", (rows, len(cat)), lo=0, hi=max(cat))
                for j, size in enumerate(bag):
                    specs[f"rec.{tab}.bag{j}.indptr"] = indptr(rows, of=f"rec.{tab}.bag{j}.indices")
                    specs[f"rec.{tab}.bag{j}.indices"] = index(None, hi=size)
                for j in range(len(dense)):
                    specs[f"rec.{tab}.dense{j}"] = floats(rows, MINILM_DIM)
            specs.update({"rec.user_ids": ids("rec_users", optional=True), "rec.item_ids": ids("rec_items", optional=True),
                          "rec.users": ArraySpec("int", ("rec_users",), lo=1, hi=n_u, unique=True),
                          "rec.items": ArraySpec("int", ("rec_items",), lo=1, hi=n_i, unique=True),
                          "rec.seen_u": index("rec_seen", hi=n_u), "rec.seen_i": index("rec_seen", hi=n_i)})
        return specs

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        if not (np.isfinite([extra["y_min"], extra["y_max"], extra["y_mean"]]).all() and extra["y_min"] <= extra["y_max"]):
            raise FormatError(f"{path}: extra.y_min/y_max/y_mean must be finite with y_min <= y_max")
        if extra.get("rec_roles") is not None:
            s = Schema.check_saved(extra["schema"])
            names = list(s.fields)
            sizes_cat = [len(arrays[f"vocab.{names.index(c)}"]) + 1 for c in s.categorical]
            for tab in ("utab", "itab"):
                c = arrays[f"rec.{tab}.cat"]
                if c.size and (c.max(axis=0) >= np.asarray(sizes_cat)).any():
                    raise FormatError(f"{path}: array 'rec.{tab}.cat' holds an index beyond its field's vocabulary")

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        torch = _require_torch()
        from . import nn as mnn

        s = Schema.from_saved(extra["schema"], arrays)
        self.schema_ = s
        self.y_min_, self.y_max_, self.y_mean_ = extra["y_min"], extra["y_max"], extra["y_mean"]
        self.history_ = extra.get("history", [])
        sizes = s.cardinalities()
        net = mnn.MultimodalNet(len(s.numeric), sizes["cat"], sizes["bag"], sizes["dense"], dim=int(self.factors),
                                hidden=[int(h) for h in self.hidden], dropout=float(self.dropout))
        state = {k[3:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("sd.")}
        net.load_state_dict(state, strict=True)
        self.net_ = net.eval()
        self.rec_ = None
        self.users_ = self.items_ = None
        self._ranker = None
        if extra.get("rec_roles") is not None:
            tabs = {}
            for tab in ("utab", "itab"):
                nb, nd = len(s.bag_fields), len(s.dense_fields)
                num, cat = arrays[f"rec.{tab}.num"], arrays[f"rec.{tab}.cat"]
                bags = [(arrays[f"rec.{tab}.bag{j}.indptr"], arrays[f"rec.{tab}.bag{j}.indices"]) for j in range(nb)]
                dense = [arrays[f"rec.{tab}.dense{j}"] for j in range(nd)]
                tabs[tab] = Encoded(len(cat), num, cat, bags, dense)
            self.rec_ = {"roles": extra["rec_roles"], **tabs,
                         **{key: arrays[f"rec.{key}"] for key in ("users", "items", "seen_u", "seen_i")}}
            ufield, ifield = self._id_fields()
            self.users_ = (IdMap(arrays["rec.user_ids"], "user") if "rec.user_ids" in arrays
                           else _external_ids(s.vocab[ufield][self.rec_["users"] - 1], "user"))
            self.items_ = (IdMap(arrays["rec.item_ids"], "item") if "rec.item_ids" in arrays
                           else _external_ids(s.vocab[ifield][self.rec_["items"] - 1], "item"))
