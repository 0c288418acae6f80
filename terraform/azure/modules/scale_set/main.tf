# One role's nodes: a scale set of confidential VMs (vTPM on, VM guest state encrypted with a
# key the TEE holds: Azure's "ConfidentialVM" security type), each with its own state disk.
# No agent, no extensions, no managed identity: the nodes call no Azure API.

variable "name" {
  type = string
}

variable "location" {
  type = string
}

variable "resource_group" {
  type = string
}

variable "zone" {
  type = string
}

variable "instance_type" {
  type = string
}

variable "node_count" {
  type = number
}

variable "image_id" {
  type = string
}

variable "subnet_id" {
  type = string
}

variable "backend_pool_id" {
  type        = string
  description = "The load balancer's pool (control planes), or empty."
}

variable "state_disk_gb" {
  type = number
}

variable "tags" {
  type = map(string)
}

variable "metadata" {
  type        = map(string)
  description = "The cloister-* keys lib/metadata reads (tags: IMDS shows them in compute.tagsList)."
}

# Azure demands an administrator credential for a Linux scale set. The image has no SSH server
# and no agent to install it: the password opens nothing. It is random and never shown.
resource "random_password" "admin" {
  length  = 32
  special = true
}

resource "azurerm_linux_virtual_machine_scale_set" "nodes" {
  name                            = var.name
  location                        = var.location
  resource_group_name             = var.resource_group
  sku                             = var.instance_type
  instances                       = var.node_count
  zones                           = var.zone == "" ? null : [var.zone]
  source_image_id                 = var.image_id
  admin_username                  = "cloister"
  admin_password                  = random_password.admin.result
  disable_password_authentication = false
  provision_vm_agent              = false
  extension_operations_enabled    = false
  overprovision                   = false
  # Manual: a change of the model (tags, image) never reimages a node behind the owner's back.
  # (Automatic instance repair needs health_probe_id, which azurerm allows only with the
  # Automatic or Rolling modes: not enabled, see docs/cloud.md.)
  upgrade_mode = "Manual"
  # The measured boot lives in the vTPM; Secure Boot stays off (the UKI is not signed by a key
  # Azure's firmware trusts): the measurements are what is checked.
  vtpm_enabled        = true
  secure_boot_enabled = false
  tags                = merge(var.tags, var.metadata)

  os_disk {
    caching                  = "ReadOnly"
    storage_account_type     = "Premium_LRS"
    security_encryption_type = "VMGuestStateOnly"
  }

  # The state disk the disk mapper encrypts (LUKS2) with a key released only after attestation.
  data_disk {
    lun                  = 0
    caching              = "None"
    create_option        = "Empty"
    disk_size_gb         = var.state_disk_gb
    storage_account_type = "Premium_LRS"
  }

  network_interface {
    name    = "nic"
    primary = true
    ip_configuration {
      name                                   = "ip"
      primary                                = true
      subnet_id                              = var.subnet_id
      load_balancer_backend_address_pool_ids = var.backend_pool_id == "" ? [] : [var.backend_pool_id]
    }
  }

  boot_diagnostics {
  }

}

output "name" {
  value = azurerm_linux_virtual_machine_scale_set.nodes.name
}
