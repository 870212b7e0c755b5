"""medmo_train: the thin MedMO trainer. TRL runs the loop, the loss, generation and distribution; this
package holds the stage recipe (config), the shard-to-dataset adapter (data), the rewards, the tiny test
model and the `medmo-train` CLI.
"""

__version__ = "0.1.0"
