"""ByteTrack: multi-object tracking by associating every detection box, numpy only.

After Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection
Box" (ECCV 2022), the way supervision's ``ByteTrack`` reads: detections in, tracks out.

- A constant-velocity Kalman filter on (cx, cy, aspect, h) per track, predicted for all
  tracks at once (batched matrices), with the real time step, so a camera analysed at
  an uneven rate still predicts well.
- Two-stage association: high-score detections against all tracks (active and
  recently lost), then low-score detections against the active tracks left over. The
  low-score pass is what keeps a track through occlusion and motion blur.
- Assignment is greedy on IoU (highest first, above a floor) rather than Hungarian:
  the same result when boxes are sparse, as on road cameras, and no scipy dependency.
- A new track needs ``min_hits`` matched frames before it is reported (tentative
  tracks that miss once are dropped); a lost track is kept for ``lost_ttl_s`` seconds.
- Association ignores class: a box is matched by where it is, not by what the detector
  called it this frame, so a van that is a ``car`` in one frame and a ``truck`` in the
  next stays one track.
- A track's class is a vote: every matched detection adds its score for every class
  (``Detections.class_scores``, kept by the detector's cross-class NMS; its one class
  when absent). The track reports the winning class and its share of the vote
  (``class_share``), so a rule that acts on a class can ask how sure the vote is.
- An unmatched detection lying on a track matched in the same frame (IoU >= ``dup_iou``)
  is the same vehicle boxed twice (a detector without cross-class NMS, a box and its
  half), not a new vehicle: it starts no track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.inference.detections import Detections


@dataclass
class Tracks:
    """Confirmed tracks seen in this frame; numpy arrays, one row per track."""

    track_id: np.ndarray  # (N,) int64
    xyxy: np.ndarray  # (N, 4) float32
    class_id: np.ndarray  # (N,) int32, the track's voted class
    confidence: np.ndarray  # (N,) float32
    class_share: np.ndarray | None = None  # (N,) float32, the voted class's share of the vote

    @classmethod
    def empty(cls) -> Tracks:
        return cls(
            np.zeros((0,), np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.int32),
            np.zeros((0,), np.float32),
            np.zeros((0,), np.float32),
        )

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def __getitem__(self, index: np.ndarray | slice) -> Tracks:
        share = None if self.class_share is None else self.class_share[index]
        return Tracks(
            self.track_id[index],
            self.xyxy[index],
            self.class_id[index],
            self.confidence[index],
            share,
        )

    def anchors(self) -> np.ndarray:
        """Bottom-centre of each box (where a vehicle meets the road), (N, 2)."""
        return np.stack(
            [(self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5, self.xyxy[:, 3]], axis=1
        ).astype(np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (M, 4) with every box in ``b`` (N, 4): (M, N)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return (inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)).astype(np.float32)


def greedy_match(score: np.ndarray, floor: float) -> list[tuple[int, int]]:
    """Pairs (row, col) taken highest score first; each row and column used once."""
    if score.size == 0:
        return []
    rows, cols = np.nonzero(score >= floor)
    order = np.argsort(-score[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


def _xyah(xyxy: np.ndarray) -> np.ndarray:
    w = xyxy[:, 2] - xyxy[:, 0]
    h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-6)
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / h, h], axis=1)


def _xyxy(xyah: np.ndarray) -> np.ndarray:
    w = xyah[:, 2] * xyah[:, 3]
    cx, cy, h = xyah[:, 0], xyah[:, 1], xyah[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


class KalmanBoxes:
    """Constant-velocity Kalman filter over many boxes at once (ByteTrack's noise model)."""

    STD_POS = 1.0 / 20
    STD_VEL = 1.0 / 160

    def __init__(self, fps_hint: float = 10.0) -> None:
        self.dt0 = 1.0 / fps_hint  # the noise model is per frame at this rate

    def initiate(self, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(xyah)
        mean = np.concatenate([xyah, np.zeros((n, 4))], axis=1)
        h = xyah[:, 3]
        std = np.stack(
            [
                2 * self.STD_POS * h,
                2 * self.STD_POS * h,
                np.full(n, 1e-2),
                2 * self.STD_POS * h,
                10 * self.STD_VEL * h,
                10 * self.STD_VEL * h,
                np.full(n, 1e-5),
                10 * self.STD_VEL * h,
            ],
            axis=1,
        )
        cov = np.einsum("ni,ij->nij", std**2, np.eye(8))
        return mean, cov

    def predict(
        self, mean: np.ndarray, cov: np.ndarray, dt: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(mean)
        if n == 0:
            return mean, cov
        steps = dt / self.dt0  # velocities are per nominal frame
        f = np.tile(np.eye(8), (n, 1, 1))
        for i in range(4):
            f[:, i, i + 4] = steps
        h = mean[:, 3]
        std = np.stack(
            [
                self.STD_POS * h,
                self.STD_POS * h,
                np.full(n, 1e-2),
                self.STD_POS * h,
                self.STD_VEL * h,
                self.STD_VEL * h,
                np.full(n, 1e-5),
                self.STD_VEL * h,
            ],
            axis=1,
        )
        q = np.einsum("ni,ij->nij", (std**2) * np.maximum(steps, 1e-3)[:, None], np.eye(8))
        mean = np.einsum("nij,nj->ni", f, mean)
        cov = f @ cov @ f.transpose(0, 2, 1) + q
        return mean, cov

    def update(
        self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(mean)
        if n == 0:
            return mean, cov
        hmat = np.eye(4, 8)
        h = mean[:, 3]
        std = np.stack(
            [self.STD_POS * h, self.STD_POS * h, np.full(n, 1e-1), self.STD_POS * h], axis=1
        )
        r = np.einsum("ni,ij->nij", std**2, np.eye(4))
        s = hmat @ cov @ hmat.T + r  # (n, 4, 4)
        k = cov @ hmat.T @ np.linalg.inv(s)  # (n, 8, 4)
        innov = xyah - mean[:, :4]
        mean = mean + np.einsum("nij,nj->ni", k, innov)
        cov = cov - k @ hmat @ cov
        return mean, cov


@dataclass
class _State:
    mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 8)))
    cov: np.ndarray = field(default_factory=lambda: np.zeros((0, 8, 8)))
    ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    hits: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    last_seen: np.ndarray = field(default_factory=lambda: np.zeros((0,)))
    last_t: np.ndarray = field(default_factory=lambda: np.zeros((0,)))
    score: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    votes: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))

    def take(self, keep: np.ndarray) -> None:
        for name in ("mean", "cov", "ids", "hits", "last_seen", "last_t", "score", "votes"):
            setattr(self, name, getattr(self, name)[keep])


class ByteTrack:
    def __init__(
        self,
        high_thresh: float = 0.5,
        low_thresh: float = 0.1,
        new_track_thresh: float = 0.6,
        match_iou: float = 0.2,
        low_match_iou: float = 0.5,
        min_hits: int = 2,
        lost_ttl_s: float = 1.5,
        fps_hint: float = 10.0,
        num_classes: int = 80,
        dup_iou: float = 0.7,
    ) -> None:
        self.high = high_thresh
        self.low = low_thresh
        self.new = new_track_thresh
        self.match_iou = match_iou
        self.low_match_iou = low_match_iou
        self.min_hits = min_hits
        self.lost_ttl_s = lost_ttl_s
        self.dup_iou = dup_iou
        self.kf = KalmanBoxes(fps_hint)
        self.num_classes = num_classes
        self.s = _State(votes=np.zeros((0, num_classes), np.float32))
        self._next_id = 1
        self._prev_t = -np.inf

    def reset(self) -> None:
        self.s = _State(votes=np.zeros((0, self.num_classes), np.float32))

    def update(self, dets: Detections, t: float) -> Tracks:
        """Feed one frame's detections at time ``t`` (seconds); get the confirmed tracks
        matched in this frame."""
        s = self.s
        dt = np.maximum(t - s.last_t, 0.0)
        s.mean, s.cov = self.kf.predict(s.mean, s.cov, dt)
        s.last_t = np.full(len(s.ids), t)
        pred = _xyxy(s.mean[:, :4]) if len(s.ids) else np.zeros((0, 4))

        conf = dets.confidence
        hi = np.nonzero(conf >= self.high)[0]
        lo = np.nonzero((conf >= self.low) & (conf < self.high))[0]
        matched_t: dict[int, int] = {}  # track row -> detection index

        # 1) high-score detections against every track (active or lost); IoU fused with
        # the detection score, as ByteTrack does.
        iou = iou_matrix(pred, dets.xyxy[hi])
        for r, c in greedy_match(iou * conf[hi][None, :], self.match_iou * self.high):
            if iou[r, c] >= self.match_iou:
                matched_t[r] = int(hi[c])
        # 2) low-score detections against active tracks left over (seen last frame or so)
        recent = np.nonzero(s.last_seen >= self._prev_t - 1e-9)[0]
        free = np.array([r for r in recent if r not in matched_t], np.int64)
        if len(free) and len(lo):
            iou2 = iou_matrix(pred[free], dets.xyxy[lo])
            for r, c in greedy_match(iou2, self.low_match_iou):
                matched_t[int(free[r])] = int(lo[c])

        if matched_t:
            rows = np.array(sorted(matched_t), np.int64)
            di = np.array([matched_t[r] for r in rows], np.int64)
            m, c = self.kf.update(s.mean[rows], s.cov[rows], _xyah(dets.xyxy[di]))
            s.mean[rows], s.cov[rows] = m, c
            s.hits[rows] += 1
            s.last_seen[rows] = t
            s.score[rows] = conf[di]
            s.votes[rows] += self._votes(dets, di)

        # drop tentative tracks that missed, and lost tracks past their time
        keep = np.ones(len(s.ids), bool)
        for r in range(len(s.ids)):
            if r in matched_t:
                continue
            if s.hits[r] < self.min_hits or t - s.last_seen[r] > self.lost_ttl_s:
                keep[r] = False
        matched_now = np.zeros(len(s.ids), bool)
        if matched_t:
            matched_now[list(matched_t)] = True
        s.take(keep)
        matched_now = matched_now[keep]

        # 3) new tentative tracks from confident, unmatched detections, unless they lie on
        # a vehicle already matched in this frame (the same vehicle boxed twice)
        used = set(matched_t.values())
        new = [int(d) for d in hi if int(d) not in used and conf[d] >= self.new]
        if new and used:
            taken = dets.xyxy[np.array(sorted(used), np.int64)]
            twice = iou_matrix(dets.xyxy[np.array(new, np.int64)], taken).max(axis=1)
            new = [d for d, o in zip(new, twice.tolist(), strict=True) if o < self.dup_iou]
        if new:
            idx = np.array(new, np.int64)
            m, c = self.kf.initiate(_xyah(dets.xyxy[idx]))
            n = len(idx)
            votes = self._votes(dets, idx)
            s.mean = np.concatenate([s.mean, m])
            s.cov = np.concatenate([s.cov, c])
            s.ids = np.concatenate([s.ids, np.arange(self._next_id, self._next_id + n)])
            self._next_id += n
            s.hits = np.concatenate([s.hits, np.ones(n, np.int32)])
            s.last_seen = np.concatenate([s.last_seen, np.full(n, t)])
            s.last_t = np.concatenate([s.last_t, np.full(n, t)])
            s.score = np.concatenate([s.score, conf[idx]])
            s.votes = np.concatenate([s.votes, votes])
            matched_now = np.concatenate([matched_now, np.ones(n, bool)])

        self._prev_t = t
        show = matched_now & (s.hits >= self.min_hits)
        if not show.any():
            return Tracks.empty()
        votes = s.votes[show]
        voted = votes.argmax(axis=1)
        share = votes[np.arange(len(voted)), voted] / np.maximum(votes.sum(axis=1), 1e-9)
        return Tracks(
            track_id=s.ids[show].astype(np.int64),
            xyxy=_xyxy(s.mean[show, :4]).astype(np.float32),
            class_id=voted.astype(np.int32),
            confidence=s.score[show].astype(np.float32),
            class_share=share.astype(np.float32),
        )

    def _votes(self, dets: Detections, idx: np.ndarray) -> np.ndarray:
        """What detections ``idx`` add to their tracks' class votes: every class's score
        when the detector kept them, else the score of their one class."""
        if dets.class_scores is not None and dets.class_scores.shape[1] == self.num_classes:
            return dets.class_scores[idx].astype(np.float32)
        votes = np.zeros((len(idx), self.num_classes), np.float32)
        votes[np.arange(len(idx)), dets.class_id[idx]] = dets.confidence[idx]
        return votes
