# Pinned to the provider versions the offline schema check validates against
# (terraform/tools/schemas/): a newer provider may accept or mean something else.
terraform {
  required_version = ">= 1.5.0"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "4.55.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.7.2"
    }
  }
}
