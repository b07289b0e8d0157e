"""The DAG API, as Ray's `ray.dag`: build a graph of tasks and actor calls
with `.bind(...)` (on remote functions, actor classes, and the methods of
class nodes and actor handles), then run it with `dag.execute(...)`:

    with InputNode() as inp:
        dag = combine.bind(f.bind(inp[0]), g.bind(inp.x))
    ember.get(dag.execute(1, x=2))

Each execute submits every node once, as ordinary `.remote()` calls.
(Ray's Compiled Graphs, `experimental_compile`, are not supported.)
"""

from ember.dag.class_node import ClassMethodNode, ClassNode
from ember.dag.dag_node import DAGNode
from ember.dag.function_node import FunctionNode
from ember.dag.input_node import DAGInputData, InputAttributeNode, InputNode
from ember.dag.output_node import MultiOutputNode

__all__ = ["ClassMethodNode", "ClassNode", "DAGInputData", "DAGNode", "FunctionNode", "InputAttributeNode",
           "InputNode", "MultiOutputNode"]
