"""CallCheck: a call's arguments against a function's parameters, by
counting for positional calls and by binding otherwise."""

import pickle

import pytest

from ember._private.call_check import CallCheck


def f(a, b=1):
    pass


def kw_only(a, *, k):
    pass


def anything(*args, **kwargs):
    pass


class K:
    def method(self, x):
        pass

    @staticmethod
    def static(y):
        pass

    @classmethod
    def klass(cls, z):
        pass


class NoInit:
    pass


def test_calls_that_fit_pass_and_others_name_the_function():
    check = CallCheck.of_function(f, "f")
    for args, kwargs in [((1,), {}), ((1, 2), {}), ((), {"a": 1}), ((1,), {"b": 2})]:
        check(args, kwargs)
    for args, kwargs, why in [((), {}, "missing a required argument: 'a'"), ((1, 2, 3), {}, "too many positional"),
                              ((1,), {"c": 2}, "got an unexpected keyword argument 'c'")]:
        with pytest.raises(TypeError, match=rf"f\(\) cannot take these arguments: {why}"):
            check(args, kwargs)


def test_required_keyword_only_and_varargs():
    with pytest.raises(TypeError, match="missing a required argument: 'k'"):
        CallCheck.of_function(kw_only, "kw_only")((1,), {})
    CallCheck.of_function(kw_only, "kw_only")((1,), {"k": 2})
    CallCheck.of_function(anything, "anything")((1, 2, 3), {"x": 1})


def test_methods_without_self_and_a_class_without_init():
    for name in ("method", "static", "klass"):
        CallCheck.of_method(K, name, name)((1,), {})
        with pytest.raises(TypeError):
            CallCheck.of_method(K, name, name)((1, 2), {})
    with pytest.raises(TypeError, match=r"NoInit\(\) cannot take these arguments"):
        CallCheck.of_method(NoInit, "__init__", "NoInit")((1,), {})
    CallCheck.of_method(NoInit, "__init__", "NoInit")((), {})


def test_a_check_pickles_without_the_defaults():
    unpicklable_default = (lambda: None)

    def g(a, b=unpicklable_default):
        pass

    check = pickle.loads(pickle.dumps(CallCheck.of_function(g, "g")))
    check((1,), {"b": 2})
    with pytest.raises(TypeError, match="g()"):
        check((1, 2, 3), {})
