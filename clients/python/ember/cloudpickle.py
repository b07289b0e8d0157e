"""`ember.cloudpickle` is the cloudpickle module (Ray ships its own as
`ray.cloudpickle`), so `import ember.cloudpickle as pickle` works too."""

import sys

import cloudpickle

sys.modules[__name__] = cloudpickle
