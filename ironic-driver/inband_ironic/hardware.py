"""The `ipmi-inband` hardware type: Ironic's `ipmi` type with one more vendor
interface. Ironic matches interfaces to a hardware type by exact class
(driver_factory.get_interface), so the stock `ipmi` type cannot take a new
vendor interface; extending it is the supported way (as ironic-staging-drivers'
staging-nm and the in-tree intel-ipmi do)."""

from ironic.drivers import ipmi

from inband_ironic import vendor


class InbandIPMIHardware(ipmi.IPMIHardware):

    @property
    def supported_vendor_interfaces(self):  # type: ignore[override]
        return [vendor.InbandBMCVendor] + super().supported_vendor_interfaces
