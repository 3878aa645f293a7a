# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The networks: a compact CNN (the shipped one) and the paper-style reference.

Both map a CMD tensor ``(batch, channels, n_mag, n_colour)`` to two tensors of
shape ``(batch, n_dist)``: ``av``, the cumulative A_V (mag) at the distance nodes,
and ``sigma``, its 1-sigma uncertainty. The last layer predicts one
*non-negative increment* per distance bin (a softplus) and the profile is their
cumulative sum, so every predicted profile is non-decreasing by construction.
The uncertainty is a second head (softplus plus a small floor) trained with a
Gaussian likelihood (`gaussian_nll`).
"""

import math

__all__ = ["CompactCNN", "PaperCNN", "ProfileHead", "ConvProfileHead", "build_network",
           "gaussian_nll", "density_mse", "profile_loss", "count_parameters",
           "ARCHITECTURES"]


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of [train]
        raise ImportError('cnnext.training needs PyTorch: pip install "cnnext[train]"') \
            from None
    return torch


torch = _torch()
nn = torch.nn
F = torch.nn.functional


class ProfileHead(nn.Module):
    """
    Turn features into a monotone cumulative A_V profile and its uncertainty.

    Parameters
    ----------
    n_in : int
        Number of input features.
    n_dist : int
        Number of distance nodes.
    inc_scale : float
        A_V (mag) per unit of softplus output for one increment. With the default
        0.1, an untrained network starts near 0.07 mag per bin (7 mag at 10 kpc for
        100 bins), the order of magnitude of Galactic-plane sightlines.
    sigma_floor : float
        Smallest 1-sigma uncertainty (mag); keeps the likelihood finite.
    """

    def __init__(self, n_in, n_dist, *, inc_scale=0.1, sigma_floor=0.01):
        super().__init__()
        self.n_dist = int(n_dist)
        self.inc_scale = float(inc_scale)
        self.sigma_floor = float(sigma_floor)
        self._build_output(int(n_in))

    def _build_output(self, n_in):
        """Make the layers that turn ``n_in`` features into `raw`'s output."""
        self.linear = nn.Linear(n_in, 2 * self.n_dist)

    @property
    def output_bias(self):
        """The ``2 * n_dist`` biases of the output (increments, then sigmas)."""
        return self.linear.bias

    def raw(self, features):
        """The ``(batch, 2 * n_dist)`` output before the softplus."""
        return self.linear(features)

    def forward(self, features):
        """Return ``(av, sigma)``, each ``(batch, n_dist)``, from ``(batch, n_in)`` features."""
        raw = self.raw(features)
        increments = F.softplus(raw[:, :self.n_dist]) * self.inc_scale
        av = torch.cumsum(increments, dim=1)
        sigma = F.softplus(raw[:, self.n_dist:]) * self.inc_scale + self.sigma_floor
        return av, sigma


class ConvProfileHead(ProfileHead):
    """
    A `ProfileHead` that decodes the features along the distance axis.

    The per-node head gives every distance node its own output unit, free of its
    neighbours. This one maps the features to ``width`` channels on a coarse
    distance grid (one node per ``coarse`` nodes of the profile), upsamples them
    with a learned transposed convolution and reads the increments and sigmas with
    1D convolutions of ``kernel`` nodes: every distance is decoded by the same
    filters, so a feature of the CMD moves the dust along the sightline instead
    of switching output units on and off. A bias per node and output follows
    (`output_bias`, what `~cnnext.training.train.refit_head_bias` refits).

    Parameters
    ----------
    n_in, n_dist, inc_scale, sigma_floor
        See `ProfileHead`.
    width : int
        Channels of the decoder.
    kernel : int
        Odd length (distance nodes) of the decoder's convolutions.
    coarse : int
        Profile nodes per node of the coarse grid (the upsampling factor).

    Examples
    --------
    >>> import torch
    >>> from cnnext.training.network import ConvProfileHead
    >>> head = ConvProfileHead(16, 10, width=4, coarse=4)
    >>> av, sigma = head(torch.zeros(2, 16))
    >>> tuple(av.shape), tuple(head.output_bias.shape)
    ((2, 10), (20,))
    """

    def __init__(self, n_in, n_dist, *, width=32, kernel=5, coarse=4, inc_scale=0.1,
                 sigma_floor=0.01):
        width, kernel, coarse = int(width), int(kernel), int(coarse)
        if width < 1 or coarse < 1 or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"ConvProfileHead needs width >= 1, coarse >= 1 and an odd "
                             f"kernel, got width={width!r}, kernel={kernel!r}, "
                             f"coarse={coarse!r}")
        self.width, self.kernel, self.coarse = width, kernel, coarse
        super().__init__(n_in, n_dist, inc_scale=inc_scale, sigma_floor=sigma_floor)

    def _build_output(self, n_in):
        self.n_coarse = -(-self.n_dist // self.coarse)
        pad = self.kernel // 2
        self.seed = nn.Linear(n_in, self.width * self.n_coarse)
        self.up = nn.ConvTranspose1d(self.width, self.width, self.coarse, stride=self.coarse)
        self.conv = nn.Conv1d(self.width, self.width, self.kernel, padding=pad)
        self.out = nn.Conv1d(self.width, 2, self.kernel, padding=pad, bias=False)
        self.bias = nn.Parameter(torch.zeros(2 * self.n_dist))

    @property
    def output_bias(self):
        """The ``2 * n_dist`` biases of the output (increments, then sigmas)."""
        return self.bias

    def raw(self, features):
        """The ``(batch, 2 * n_dist)`` output before the softplus."""
        h = F.relu(self.seed(features)).view(-1, self.width, self.n_coarse)
        h = F.relu(self.conv(F.relu(self.up(h))))
        return self.out(h)[:, :, :self.n_dist].flatten(1) + self.bias



class CompactCNN(nn.Module):
    """
    The compact network shipped with cnnext (about 3 million weights, 13 MB).

    A 5x5 convolution reads the full-resolution CMD and a 2x2 max pooling halves
    it (the paper's feature stage); optional 3x3 convolutions follow at that
    resolution; then *one* dense layer of ``hidden`` units and a `ProfileHead`
    give the profile and its uncertainty. The paper-style network has three wide
    dense layers there (3072, 3072, 2048 units, 54 million weights); one narrow
    layer is 17 times smaller, three times faster to train and, on the same
    training examples, at least as accurate (``benchmarks/bench_training.py``).

    The dense layer reads the half-resolution feature maps on purpose: the
    extinction is read from colour shifts of a fraction of a bin (0.11 mag of
    J-Ks is 0.65 mag of A_V), and networks that pooled the CMD down to 8x8
    before their dense layer were markedly less accurate beyond 2 kpc.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, n_mag, n_colour)`` of the CMD (the `~cnnext.cmds.CMDSpec` shape).
    n_dist : int
        Number of distance nodes.
    channels : tuple of int
        Filters of the convolutions: the first is the 5x5 convolution at full
        resolution, the others 3x3 convolutions after the pooling.
    hidden : int
        Width of the dense layer.
    dropout : float
        Dropout before the output layer (training only).
    inc_scale, sigma_floor : float
        See `ProfileHead`.
    n_obs : int
        Number of observation descriptors read beside the CMD (0: none). They
        join the flattened CMD features at the input of the dense layer, so that
        the network reads the CMD knowing how deep the sightline was observed
        (`cnnext.observation`).
    head : {"dense", "conv"}
        The output layer: `ProfileHead` (one output unit per distance node) or
        `ConvProfileHead` (the profile decoded by convolutions along the distance).
    head_options : dict, optional
        Options of `ConvProfileHead` (``width``, ``kernel``, ``coarse``).

    Examples
    --------
    >>> import torch
    >>> from cnnext.training.network import CompactCNN
    >>> net = CompactCNN((2, 64, 64), 100).eval()
    >>> av, sigma = net(torch.zeros(3, 2, 64, 64))
    >>> tuple(av.shape), bool((av.diff(dim=1) >= 0).all()), bool((sigma > 0).all())
    ((3, 100), True, True)
    >>> net = CompactCNN((2, 64, 64), 100, n_obs=6).eval()
    >>> tuple(net(torch.zeros(3, 2, 64, 64), torch.zeros(3, 6))[0].shape)
    (3, 100)
    """

    def __init__(self, input_shape, n_dist, *, channels=(12,), hidden=256,
                 dropout=0.1, inc_scale=0.1, sigma_floor=0.01, n_obs=0, head="dense",
                 head_options=None):
        super().__init__()
        n_ch, n_mag, n_col = (int(v) for v in input_shape)
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"CompactCNN needs at least one convolution width >= 1, got "
                             f"channels={channels!r}")
        if n_mag % 2 or n_col % 2:
            raise ValueError(f"CompactCNN pools by 2: CMD bins must be even, got "
                             f"{n_mag}x{n_col}")
        layers = [nn.Conv2d(n_ch, channels[0], 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.n_obs = int(n_obs)
        n_feat = channels[-1] * (n_mag // 2) * (n_col // 2) + self.n_obs
        self.dense = nn.Sequential(nn.Linear(n_feat, int(hidden)), nn.ReLU(),
                                   nn.Dropout(float(dropout)))
        heads = {"dense": ProfileHead, "conv": ConvProfileHead}
        if head not in heads:
            raise ValueError(f"unknown head {head!r}; use one of {sorted(heads)}")
        if head_options and head == "dense":
            raise ValueError("head_options apply to the 'conv' head only")
        self.head = heads[head](int(hidden), n_dist, inc_scale=inc_scale,
                                sigma_floor=sigma_floor, **(head_options or {}))

    def forward(self, cmd, obs=None):
        """
        Return ``(av, sigma)`` (cumulative A_V and 1-sigma, mag) for a CMD batch.

        ``obs`` holds the ``(batch, n_obs)`` observation descriptors (offsets from
        `cnnext.observation.REFERENCE`); required when ``n_obs > 0``.
        """
        return self.head(self.features_of(cmd, obs))

    def features_of(self, cmd, obs=None):
        """The input of the output layer (``(batch, hidden)``) for a CMD batch."""
        features = self.features(cmd)
        if self.n_obs:
            if obs is None:
                raise ValueError(f"this network reads {self.n_obs} observation "
                                 f"descriptors beside the CMD: pass obs")
            features = torch.cat([features, obs], dim=1)
        return self.dense(features)


class PaperCNN(nn.Module):
    """
    The paper-style reference network ``C5x5.12-P2-{D3072}x2-D2048``.

    One 5x5 convolution with 12 filters, 2x2 max pooling, two dense layers of 3072
    and one of 2048 units (Cornu et al. 2022, as described for the authors'
    CIANNA framework), then the same `ProfileHead` as `CompactCNN` so that both
    networks are trained and compared on the same footing. About 54 million
    weights for 64x64 CMDs: kept as a reference, not shipped.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, n_mag, n_colour)``.
    n_dist : int
        Number of distance nodes.
    filters : int
        Convolution filters (12 in the paper).
    dense : tuple of int
        Widths of the dense layers.
    dropout : float
        Dropout after each dense layer (training only).
    inc_scale, sigma_floor : float
        See `ProfileHead`.
    """

    def __init__(self, input_shape, n_dist, *, filters=12, dense=(3072, 3072, 2048),
                 dropout=0.1, inc_scale=0.1, sigma_floor=0.01):
        super().__init__()
        n_ch, n_mag, n_col = (int(v) for v in input_shape)
        if n_mag % 2 or n_col % 2:
            raise ValueError(f"PaperCNN pools by 2: CMD bins must be even, got "
                             f"{n_mag}x{n_col}")
        self.features = nn.Sequential(nn.Conv2d(n_ch, int(filters), 5, padding=2), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Flatten())
        layers = []
        n_prev = int(filters) * (n_mag // 2) * (n_col // 2)
        for width in dense:
            layers += [nn.Linear(n_prev, int(width)), nn.ReLU(), nn.Dropout(float(dropout))]
            n_prev = int(width)
        self.dense = nn.Sequential(*layers)
        self.head = ProfileHead(n_prev, n_dist, inc_scale=inc_scale, sigma_floor=sigma_floor)

    n_obs = 0  # reads the CMD only

    def forward(self, cmd, obs=None):
        """Return ``(av, sigma)`` (cumulative A_V and 1-sigma, mag) for a CMD batch."""
        return self.head(self.features_of(cmd))

    def features_of(self, cmd, obs=None):
        """The input of the output layer (``(batch, dense[-1])``) for a CMD batch."""
        return self.dense(self.features(cmd))


#: Architectures known to `build_network`.
ARCHITECTURES = {"compact": CompactCNN, "paper": PaperCNN}


def build_network(arch, input_shape, n_dist, **options):
    """
    Build a network by name.

    Parameters
    ----------
    arch : {"compact", "paper"}
        Architecture name.
    input_shape : tuple of int
        ``(channels, n_mag, n_colour)`` of the CMDs.
    n_dist : int
        Number of distance nodes.
    **options
        Passed to the network class (e.g. ``channels``, ``hidden``, ``dropout``).

    Examples
    --------
    >>> from cnnext.training.network import build_network, count_parameters
    >>> count_parameters(build_network("compact", (2, 64, 64), 100))
    3197996
    """
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown network architecture {arch!r}; use one of "
                         f"{sorted(ARCHITECTURES)}") from None
    return cls(input_shape, n_dist, **options)


def count_parameters(net):
    """Return the number of trainable weights of a network."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


def gaussian_nll(av, sigma, target, *, beta=0.5):
    """
    Gaussian negative log-likelihood of the targets, averaged over nodes and batch.

    With ``beta > 0`` each term is weighted by ``sigma**(2 beta)`` (detached), the
    "beta-NLL" of Seitzer et al. (2022): a plain likelihood lets the network
    explain poorly-fit examples with a large sigma instead of fitting their mean;
    the weighting keeps the mean accurate while sigma is still calibrated.

    Parameters
    ----------
    av, sigma, target : `torch.Tensor`
        Predicted mean, predicted 1-sigma and true values, same shape.
    beta : float
        Weight exponent, 0 (plain likelihood) to 1 (mean-squared-error gradients
        for the mean).
    """
    var = sigma * sigma
    nll = 0.5 * (torch.log(var) + (target - av) ** 2 / var + math.log(2 * math.pi))
    if beta:
        nll = nll * var.detach() ** beta
    return nll.mean()


def density_mse(av, target, *, bins=1, unit=0.1):
    """
    Mean squared error of the extinction increments per distance bin.

    The loss on the *density*: ``increment[i] = av[i] - av[i-1]`` (``av[-1] = 0``)
    of prediction and truth, each averaged over ``bins`` neighbouring bins
    (a centred boxcar, zero beyond the ends), then ``mean((pred - true)**2) /
    unit**2``. A loss on the cumulative profile alone barely cares in which of
    several neighbouring bins an increment lands (their gradients differ by one
    node's error), and the per-bin output units then settle on a few favoured
    distances for every sightline: the rings of issue 14.

    Parameters
    ----------
    av, target : `torch.Tensor`
        Predicted and true cumulative A_V (mag), ``(batch, n_dist)``.
    bins : int
        Odd boxcar width in distance bins (1: the increments themselves).
    unit : float
        Increment (mag) that counts as an error of 1.

    Examples
    --------
    >>> import torch
    >>> from cnnext.training.network import density_mse
    >>> truth = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    >>> round(float(density_mse(truth + torch.tensor([0.0, 0.0, 0.1, 0.1]), truth)), 4)
    0.25
    """
    bins = int(bins)
    if bins < 1 or bins % 2 == 0:
        raise ValueError(f"density_mse: bins must be an odd number >= 1, got {bins}")

    def increments(x):
        inc = torch.diff(x, dim=1, prepend=torch.zeros_like(x[:, :1]))
        if bins == 1:
            return inc
        return F.avg_pool1d(inc[:, None, :], bins, stride=1, padding=bins // 2,
                            count_include_pad=True)[:, 0, :]

    return ((increments(av) - increments(target)) ** 2).mean() / (unit * unit)


def profile_loss(av, sigma, target, *, beta=0.5, density_weight=0.0, density_bins=1):
    """
    The training loss: `gaussian_nll` of the cumulative profile plus, with
    ``density_weight > 0``, ``density_weight`` times `density_mse` of the increments.

    Parameters
    ----------
    av, sigma, target : `torch.Tensor`
        Predicted mean, predicted 1-sigma and true cumulative A_V (mag).
    beta : float
        See `gaussian_nll`.
    density_weight : float or sequence of float
        Weight of the loss on the increments (0: the cumulative alone); a
        sequence gives one weight per entry of ``density_bins``.
    density_bins : int or sequence of int
        Boxcar width of `density_mse` (odd number of distance bins); a sequence
        adds one `density_mse` per width, each times its weight (a float
        ``density_weight`` applies to every width).

    Examples
    --------
    >>> import torch
    >>> from cnnext.training.network import gaussian_nll, profile_loss
    >>> av, sigma = torch.tensor([[0.1, 0.3]]), torch.tensor([[0.1, 0.1]])
    >>> target = torch.tensor([[0.1, 0.2]])
    >>> bool(profile_loss(av, sigma, target) == gaussian_nll(av, sigma, target))
    True
    >>> with_density = profile_loss(av, sigma, target, density_weight=2.0)
    >>> round(float(with_density - gaussian_nll(av, sigma, target)), 4)  # 2 x 0.5
    1.0
    >>> two_scales = profile_loss(av, sigma, target, density_weight=[2.0, 1.0],
    ...                           density_bins=[1, 3])
    >>> round(float(two_scales - with_density), 4)  # 1 x density_mse over 3 bins
    0.1111
    """
    loss = gaussian_nll(av, sigma, target, beta=beta)
    bins = density_bins if isinstance(density_bins, (list, tuple)) else [density_bins]
    weights = density_weight if isinstance(density_weight, (list, tuple)) \
        else [density_weight] * len(bins)
    for weight, width in zip(weights, bins, strict=True):
        if weight:
            loss = loss + float(weight) * density_mse(av, target, bins=width)
    return loss
