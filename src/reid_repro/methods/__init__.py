"""Method plug-ins, looked up by the name used in params.yaml (a run's ``method`` and the section it reads)."""

from reid_repro.methods.cluster_contrast import ClusterContrast
from reid_repro.methods.ice import Ice
from reid_repro.methods.ise import Ise
from reid_repro.methods.mixup import Mixup
from reid_repro.methods.supervised import Supervised

METHODS = {"cluster_contrast": ClusterContrast, "ice": Ice, "ise": Ise, "mixup": Mixup,
           "supervised": Supervised}
# a method whose settings build on another method's section: its own keys are added to (or override) those
BASE_SECTION = {"ise": "cluster_contrast", "mixup": "cluster_contrast"}
